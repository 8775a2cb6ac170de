//! The shape of the source tree that docs/architecture.md promises: no import circle between the
//! top-level modules of `src/` nor between two files (a file and its own `mod.rs` aside), no
//! function over 60 lines in the engine or the resolver, and no list of loss variants outside
//! `src/losses/`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// A file's module path (`src/engine/run.rs` → `[engine, run]`, `src/engine/mod.rs` → `[engine]`).
fn module_of(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix("src").unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|l| l == "mod" || l == "lib" || l == "main") {
        parts.pop();
    }
    parts
}

/// The source without comments and without its `#[cfg(test)]` part.
fn code(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let text = text.split("#[cfg(test)]").next().unwrap();
    text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// `a::{b, c::{d}}` → `a::b`, `a::c::d`.
fn expand(path: &str) -> Vec<String> {
    let path = path.trim();
    let Some(open) = path.find('{') else { return vec![path.to_string()] };
    let close = path.rfind('}').unwrap();
    let (prefix, inner) = (&path[..open], &path[open + 1..close]);
    let (mut items, mut depth, mut cur) = (Vec::new(), 0, String::new());
    for ch in inner.chars() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
        if ch == ',' && depth == 0 {
            items.push(std::mem::take(&mut cur));
        } else {
            cur.push(ch);
        }
    }
    items.push(cur);
    items.iter().filter(|i| !i.trim().is_empty()).flat_map(|i| expand(i)).map(|i| format!("{prefix}{i}")).collect()
}

/// The paths a file names: its `use` items (statements that begin a line) and the
/// `crate::…`/`super::…` paths in the rest of its code.
fn paths_named(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = String::new();
    let mut statement: Option<String> = None;
    for line in code.lines() {
        let t = line.trim_start();
        let t = ["pub(crate) ", "pub(super) ", "pub "].iter().find_map(|p| t.strip_prefix(p)).unwrap_or(t);
        if statement.is_none() && t.starts_with("use ") {
            statement = Some(String::new());
        }
        match &mut statement {
            Some(text) => {
                text.push_str(line);
                text.push(' ');
                if line.contains(';') {
                    let text = statement.take().expect("in a statement");
                    let body = text.trim_start();
                    let body = &body[body.find("use ").expect("a use statement") + 4..body.find(';').expect("its end")];
                    out.extend(expand(body));
                }
            }
            None => {
                rest.push_str(line);
                rest.push('\n');
            }
        }
    }
    for start in ["crate::", "super::"] {
        for (i, _) in rest.match_indices(start) {
            if rest[..i].chars().last().is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let path: String = rest[i..].chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
            out.push(path.trim_end_matches(':').to_string());
        }
    }
    out
}

/// A module path, `[engine, run]`.
type Module = Vec<String>;
/// Who imports whom.
type Graph = BTreeMap<Module, BTreeSet<Module>>;

/// Which file imports which (module path → the module files it names), and the `mod.rs` files.
fn import_graph() -> (Graph, BTreeSet<Module>) {
    let files: Vec<PathBuf> = rust_files(Path::new("src"));
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(f)).collect();
    let is_mod_rs: BTreeSet<Vec<String>> =
        files.iter().filter(|f| f.file_name().is_some_and(|n| n == "mod.rs" || n == "lib.rs")).map(|f| module_of(f)).collect();
    let file_of = |path: &[String]| (0..=path.len()).rev().map(|k| path[..k].to_vec()).find(|p| modules.contains(p));
    let mut graph: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for f in &files {
        let me = module_of(f);
        // the module whose children are this file's `use child::…`
        let children_of = if is_mod_rs.contains(&me) { me.clone() } else { me[..me.len().saturating_sub(1)].to_vec() };
        for path in paths_named(&code(f)) {
            let segs: Vec<String> = path.split("::").map(|s| s.split(" as ").next().unwrap().trim().to_string()).collect();
            let full: Vec<String> = match segs[0].as_str() {
                "crate" => segs[1..].to_vec(),
                "super" => {
                    let mut base = me.clone();
                    let supers = segs.iter().take_while(|s| *s == "super").count();
                    for _ in 0..supers {
                        base.pop();
                    }
                    base.into_iter().chain(segs[supers..].iter().cloned()).collect()
                }
                "self" => me.iter().chain(&segs[1..]).cloned().collect(),
                first => {
                    let candidate: Vec<String> = children_of.iter().cloned().chain([first.to_string()]).collect();
                    if !modules.contains(&candidate) || candidate == me {
                        continue;
                    }
                    children_of.iter().chain(&segs).cloned().collect()
                }
            };
            if let Some(target) = file_of(&full).filter(|t| *t != me) {
                graph.entry(me.clone()).or_default().insert(target);
            }
        }
    }
    (graph, is_mod_rs)
}

/// The circles of `graph`, as strongly connected components of more than one node.
fn circles(graph: &Graph) -> Vec<Vec<Module>> {
    let nodes: BTreeSet<&Vec<String>> = graph.keys().chain(graph.values().flatten()).collect();
    let reach = |from: &Vec<String>| {
        let mut seen: BTreeSet<Vec<String>> = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(n) = todo.pop() {
            for m in graph.get(&n).into_iter().flatten() {
                if seen.insert(m.clone()) {
                    todo.push(m.clone());
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<&Vec<String>, BTreeSet<Vec<String>>> = nodes.iter().map(|n| (*n, reach(n))).collect();
    let mut out: Vec<Vec<Vec<String>>> = Vec::new();
    for n in &nodes {
        let comp: Vec<Vec<String>> = nodes.iter().filter(|m| reachable[*n].contains(**m) && reachable[*m].contains(*n)).map(|m| (*m).clone()).collect();
        if comp.len() > 1 && !out.contains(&comp) {
            out.push(comp);
        }
    }
    out
}

#[test]
fn no_import_circle_between_top_level_modules() {
    let (graph, _) = import_graph();
    let mut top: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (a, bs) in &graph {
        for b in bs {
            let (a, b) = (a[..a.len().min(1)].to_vec(), b[..b.len().min(1)].to_vec());
            if a != b && !a.is_empty() && !b.is_empty() {
                top.entry(a).or_default().insert(b);
            }
        }
    }
    assert_eq!(circles(&top), Vec::<Vec<Vec<String>>>::new(), "top-level modules that import each other");
}

#[test]
fn no_import_circle_between_files() {
    let (graph, is_mod_rs) = import_graph();
    // a file and its folder's mod.rs name each other by design (declarations, re-exports)
    let parent_child = |a: &Vec<String>, b: &Vec<String>| {
        (is_mod_rs.contains(b) && a.len() == b.len() + 1 && a.starts_with(b)) || (is_mod_rs.contains(a) && b.len() == a.len() + 1 && b.starts_with(a))
    };
    let files: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> =
        graph.iter().map(|(a, bs)| (a.clone(), bs.iter().filter(|b| !parent_child(a, b)).cloned().collect())).collect();
    assert_eq!(circles(&files), Vec::<Vec<Vec<String>>>::new(), "files that import each other");
}

/// The functions of `file` over `limit` lines: (name, lines).
fn long_functions(file: &Path, limit: usize) -> Vec<(String, usize)> {
    let text = std::fs::read_to_string(file).unwrap();
    let lines: Vec<&str> = text.split("#[cfg(test)]").next().unwrap().lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim_start();
        let sig = ["fn ", "pub fn ", "pub(super) fn ", "pub(crate) fn "].iter().find_map(|p| t.strip_prefix(p));
        let Some(sig) = sig else { continue };
        let indent = &l[..l.len() - t.len()];
        let close = format!("{indent}}}");
        if let Some(end) = lines[i..].iter().position(|x| *x == close) {
            let name: String = sig.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if end + 1 > limit {
                out.push((format!("{}: {name}", file.display()), end + 1));
            }
        }
    }
    out
}

#[test]
fn no_function_over_60_lines_in_the_engine_or_the_resolver() {
    let long: Vec<(String, usize)> =
        ["src/engine", "src/config/resolve"].iter().flat_map(|d| rust_files(Path::new(d))).flat_map(|f| long_functions(&f, 60)).collect();
    assert!(long.is_empty(), "functions over 60 lines: {long:?}");
}

#[test]
fn loss_variants_are_listed_only_in_src_losses() {
    let outside: Vec<String> = rust_files(Path::new("src"))
        .into_iter()
        .filter(|f| !f.starts_with("src/losses"))
        .flat_map(|f| {
            let text = std::fs::read_to_string(&f).unwrap();
            text.lines().filter(|l| l.contains("LossSpec::")).map(|l| format!("{}: {}", f.display(), l.trim())).collect::<Vec<_>>()
        })
        .collect();
    assert!(outside.len() <= 3, "`LossSpec::` outside src/losses/: {outside:#?}");
}

#[test]
fn the_checker_sees_a_circle() {
    // the test's own parser, on a made-up pair of files that import each other
    let a = paths_named("use crate::engine::{run::Run, error::EngineError};\nfn f() { crate::error::Error::io(); }");
    assert_eq!(a, vec!["crate::engine::run::Run", "crate::engine::error::EngineError", "crate::error::Error::io"]);
    let mut g: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    let (x, y) = (vec!["engine".to_string()], vec!["error".to_string()]);
    g.entry(x.clone()).or_default().insert(y.clone());
    assert!(circles(&g).is_empty());
    g.entry(y).or_default().insert(x);
    assert_eq!(circles(&g).len(), 1);
}
