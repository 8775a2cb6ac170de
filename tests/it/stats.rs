//! Welch's test and its interval against SciPy (`scripts/welch-reference.py` wrote
//! `tests/fixtures/welch.json` with `scipy.stats.ttest_ind(equal_var=False)` and
//! `scipy.stats.t.ppf`), and `cohort compare --baseline / --select` on generated runs.

use cohort::stats::{t_quantile_two_sided, t_two_sided_p, welch};

fn close(got: f64, want: f64, what: &str) {
    let tol = 1e-9 * want.abs().max(1e-12);
    assert!((got - want).abs() <= tol, "{what}: {got} vs SciPy's {want}");
}

#[test]
fn welch_matches_scipy() {
    let text = std::fs::read_to_string("tests/fixtures/welch.json").unwrap();
    let fixture: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = fixture["cases"].as_object().unwrap();
    assert!(cases.len() >= 8);
    for (name, c) in cases {
        let v = |k: &str| c[k].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect::<Vec<f64>>();
        let w = welch(&v("a"), &v("b")).unwrap();
        close(w.diff, c["diff"].as_f64().unwrap(), &format!("{name} diff"));
        close(w.se, c["se"].as_f64().unwrap(), &format!("{name} se"));
        close(w.df, c["df"].as_f64().unwrap(), &format!("{name} df"));
        close(w.ci95.0, c["ci95"][0].as_f64().unwrap(), &format!("{name} lower bound"));
        close(w.ci95.1, c["ci95"][1].as_f64().unwrap(), &format!("{name} upper bound"));
        close(w.p, c["p"].as_f64().unwrap(), &format!("{name} p"));
    }
}

#[test]
fn t_distribution_edges() {
    // the familiar quantiles: 12.706 (1 df), 2.776 (4), 2.228 (10), 1.960 (large)
    assert!((t_quantile_two_sided(0.05, 1.0) - 12.706_204_736).abs() < 1e-6);
    assert!((t_quantile_two_sided(0.05, 4.0) - 2.776_445_105).abs() < 1e-6);
    assert!((t_quantile_two_sided(0.05, 10.0) - 2.228_138_852).abs() < 1e-6);
    assert!((t_quantile_two_sided(0.05, 1e7) - 1.959_964).abs() < 1e-5);
    assert_eq!(t_two_sided_p(0.0, 5.0), 1.0);
    assert!(t_two_sided_p(50.0, 5.0) < 1e-6);
    // too few seeds: no test; no spread
    assert!(welch(&[0.5], &[0.4, 0.41]).is_none());
    let same = welch(&[0.5, 0.5], &[0.5, 0.5]).unwrap();
    assert_eq!((same.p, same.ci95), (1.0, (0.0, 0.0)));
    assert_eq!(welch(&[0.6, 0.6], &[0.5, 0.5]).unwrap().p, 0.0);
}
