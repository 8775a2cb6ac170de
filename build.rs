//! With the `tch` feature, puts LibTorch's lib folder (`$LIBTORCH/lib`) on the binary's rpath,
//! so `cohort` runs without LD_LIBRARY_PATH. Does nothing otherwise.

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let (Some(_), Ok(lt)) = (std::env::var_os("CARGO_FEATURE_TCH"), std::env::var("LIBTORCH")) {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lt}/lib");
    }
}
