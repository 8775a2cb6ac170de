//! Finds where a value sits in a RON source, given its path (`edges[2].from[0]`).
//!
//! Parsing errors come with a position from ron itself; errors found later, while resolving the
//! plan (an edge naming an unknown node, a stage that needs an untrained node), only know the
//! path of the offending value. This module walks the source text along that path so those
//! errors can point at a line and column too. Wrappers such as `Some(x)`, an enum variant around a
//! struct (`Mnist1d(seed: 1)`) or a struct name (`Node(...)`) are transparent.

use std::fmt;

/// One step of a path into the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    /// A named struct field.
    Field(&'static str),
    /// An element of a list (0-based).
    Index(usize),
}

/// A path from the top of the file, e.g. `edges[2].from[0]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldPath(pub Vec<Seg>);

impl FieldPath {
    /// The path of the whole file.
    pub fn root() -> Self {
        Self(Vec::new())
    }
    /// The path one level up (the root stays the root).
    pub fn parent(&self) -> Self {
        let mut v = self.0.clone();
        v.pop();
        Self(v)
    }
    /// This path extended by a field.
    pub fn field(&self, name: &'static str) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Field(name));
        Self(v)
    }
    /// This path extended by a list index.
    pub fn index(&self, i: usize) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Index(i));
        Self(v)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Seg::Field(n) if i == 0 => write!(f, "{n}")?,
                Seg::Field(n) => write!(f, ".{n}")?,
                Seg::Index(k) => write!(f, "[{k}]")?,
            }
        }
        Ok(())
    }
}

/// 1-based line and column (in characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pos {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub col: usize,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Open(char),
    Close,
    Colon,
    Comma,
    Other,
}

fn tokenize(src: &str) -> Vec<(Tok, Pos)> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line, mut col) = (0usize, 1usize, 1usize);
    // advance over chars[i..j], tracking line/column
    let step = |i: &mut usize, j: usize, line: &mut usize, col: &mut usize| {
        while *i < j && *i < chars.len() {
            if chars[*i] == '\n' {
                *line += 1;
                *col = 1;
            } else {
                *col += 1;
            }
            *i += 1;
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let pos = Pos { line, col };
        let next = chars.get(i + 1).copied();
        if c.is_whitespace() {
            let j = i + 1;
            step(&mut i, j, &mut line, &mut col);
        } else if c == '/' && next == Some('/') {
            let mut j = i;
            while j < chars.len() && chars[j] != '\n' {
                j += 1;
            }
            step(&mut i, j, &mut line, &mut col);
        } else if c == '/' && next == Some('*') {
            let (mut j, mut depth) = (i + 2, 1);
            while j < chars.len() && depth > 0 {
                if chars[j] == '/' && chars.get(j + 1) == Some(&'*') {
                    depth += 1;
                    j += 2;
                } else if chars[j] == '*' && chars.get(j + 1) == Some(&'/') {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            step(&mut i, j, &mut line, &mut col);
        } else if c == '#' && next == Some('!') {
            // #![enable(...)] header
            let mut j = i;
            while j < chars.len() && chars[j] != ']' {
                j += 1;
            }
            let j = j + 1;
            step(&mut i, j, &mut line, &mut col);
        } else if c == '"' || ((c == 'r' || c == 'b') && matches!(next, Some('"') | Some('#'))) {
            let mut j = i;
            if chars[j] == 'b' {
                j += 1;
            }
            if chars.get(j) == Some(&'r') || (c == 'r') {
                if chars[j] == 'r' {
                    j += 1;
                }
                let mut hashes = 0;
                while chars.get(j) == Some(&'#') {
                    hashes += 1;
                    j += 1;
                }
                j += 1; // opening quote
                loop {
                    if j >= chars.len() {
                        break;
                    }
                    if chars[j] == '"' && (1..=hashes).all(|h| chars.get(j + h) == Some(&'#')) {
                        j += 1 + hashes;
                        break;
                    }
                    j += 1;
                }
            } else {
                j += 1;
                while j < chars.len() && chars[j] != '"' {
                    if chars[j] == '\\' {
                        j += 1;
                    }
                    j += 1;
                }
                j += 1;
            }
            out.push((Tok::Other, pos));
            step(&mut i, j, &mut line, &mut col);
        } else if c == '\'' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '\'' {
                if chars[j] == '\\' {
                    j += 1;
                }
                j += 1;
            }
            out.push((Tok::Other, pos));
            let j = j + 1;
            step(&mut i, j, &mut line, &mut col);
        } else if c.is_alphabetic() || c == '_' {
            let mut j = i;
            while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            out.push((Tok::Ident(chars[i..j].iter().collect()), pos));
            step(&mut i, j, &mut line, &mut col);
        } else if matches!(c, '(' | '[' | '{') {
            out.push((Tok::Open(c), pos));
            let j = i + 1;
            step(&mut i, j, &mut line, &mut col);
        } else if matches!(c, ')' | ']' | '}') {
            out.push((Tok::Close, pos));
            let j = i + 1;
            step(&mut i, j, &mut line, &mut col);
        } else if c == ':' {
            out.push((Tok::Colon, pos));
            let j = i + 1;
            step(&mut i, j, &mut line, &mut col);
        } else if c == ',' {
            out.push((Tok::Comma, pos));
            let j = i + 1;
            step(&mut i, j, &mut line, &mut col);
        } else {
            // numbers, signs, dots: one token up to the next delimiter
            let mut j = i + 1;
            while j < chars.len() && !chars[j].is_whitespace() && !matches!(chars[j], '(' | ')' | '[' | ']' | '{' | '}' | ',' | ':' | '"' | '/') {
                j += 1;
            }
            out.push((Tok::Other, pos));
            step(&mut i, j, &mut line, &mut col);
        }
    }
    out
}

/// An entry of a group: optional `key:` and the token index where its value starts.
struct Entry {
    key: Option<String>,
    value: usize,
}

struct Walker {
    toks: Vec<(Tok, Pos)>,
}

impl Walker {
    /// Index just past the value starting at `i`.
    fn skip_value(&self, mut i: usize) -> usize {
        if let Some((Tok::Ident(_), _)) = self.toks.get(i) {
            i += 1;
            if !matches!(self.toks.get(i), Some((Tok::Open(_), _))) {
                return i;
            }
        }
        match self.toks.get(i) {
            Some((Tok::Open(_), _)) => {
                let mut depth = 0usize;
                while i < self.toks.len() {
                    match self.toks[i].0 {
                        Tok::Open(_) => depth += 1,
                        Tok::Close => {
                            depth -= 1;
                            if depth == 0 {
                                return i + 1;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                i
            }
            Some(_) => i + 1,
            None => i,
        }
    }

    /// Entries of the group whose value starts at `i` (after an optional leading name).
    fn entries(&self, mut i: usize) -> Option<(char, Vec<Entry>)> {
        if let Some((Tok::Ident(_), _)) = self.toks.get(i) {
            i += 1;
        }
        let open = match self.toks.get(i) {
            Some((Tok::Open(c), _)) => *c,
            _ => return None,
        };
        i += 1;
        let mut out = Vec::new();
        while i < self.toks.len() {
            if matches!(self.toks[i].0, Tok::Close) {
                break;
            }
            if matches!(self.toks[i].0, Tok::Comma) {
                i += 1;
                continue;
            }
            let key = match (&self.toks[i].0, self.toks.get(i + 1).map(|t| &t.0)) {
                (Tok::Ident(k), Some(Tok::Colon)) if open == '(' => {
                    i += 2;
                    Some(k.clone())
                }
                _ => None,
            };
            let start = i;
            i = self.skip_value(i);
            if open == '{' {
                // map: `key: value`, keep the value
                if matches!(self.toks.get(i).map(|t| &t.0), Some(Tok::Colon)) {
                    let v = i + 1;
                    i = self.skip_value(v);
                    out.push(Entry { key: None, value: v });
                    continue;
                }
            }
            out.push(Entry { key, value: start });
            if i == start {
                i += 1;
            }
        }
        Some((open, out))
    }

    fn find(&self, at: usize, path: &[Seg]) -> usize {
        let Some((seg, rest)) = path.split_first() else { return at };
        let Some((open, entries)) = self.entries(at) else { return at };
        let hit = match seg {
            Seg::Field(name) => entries.iter().find(|e| e.key.as_deref() == Some(name)).map(|e| e.value),
            Seg::Index(k) if open != '(' || entries.iter().all(|e| e.key.is_none()) => entries.get(*k).map(|e| e.value),
            Seg::Index(_) => None,
        };
        match hit {
            Some(v) => self.find(v, rest),
            // transparent wrapper: `Some(...)`, `Variant((...))`
            None if entries.len() == 1 && entries[0].key.is_none() && open == '(' => {
                let inner = entries[0].value;
                let deeper = self.find(inner, path);
                if deeper != inner { deeper } else { at }
            }
            None => at,
        }
    }
}

/// Position of the value at `path`, or of its deepest enclosing value that exists in the file
/// (a field left to its default points at the struct that omits it).
pub fn locate(src: &str, path: &FieldPath) -> Option<Pos> {
    let w = Walker { toks: tokenize(src) };
    if w.toks.is_empty() {
        return None;
    }
    let i = w.find(0, &path.0);
    w.toks.get(i).map(|t| t.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = r#"// comment with ( [ brackets
Experiment(
    name: "x(",
    nodes: [
        Node(id: "a", model: Mlp(hidden: [8])),
        (id: "b", checkpoint: Some("c.bpk")), /* ] */
    ],
    edges: [Edge(from: ["a", "zz"], to: "b", loss: SoftTarget(temperature: 2.0))],
)"#;

    fn p(segs: Vec<Seg>) -> FieldPath {
        FieldPath(segs)
    }

    #[test]
    fn finds_nested_values() {
        use Seg::*;
        assert_eq!(locate(SRC, &p(vec![Field("name")])), Some(Pos { line: 3, col: 11 }));
        assert_eq!(locate(SRC, &p(vec![Field("edges"), Index(0), Field("from"), Index(1)])), Some(Pos { line: 8, col: 30 }));
        assert_eq!(locate(SRC, &p(vec![Field("nodes"), Index(1), Field("checkpoint")])), Some(Pos { line: 6, col: 31 }));
        assert_eq!(locate(SRC, &p(vec![Field("edges"), Index(0), Field("loss"), Field("temperature")])), Some(Pos { line: 8, col: 76 }));
        // missing field: the enclosing struct
        assert_eq!(locate(SRC, &p(vec![Field("nodes"), Index(1), Field("model")])), Some(Pos { line: 6, col: 9 }));
        assert_eq!(p(vec![Field("edges"), Index(0), Field("from"), Index(1)]).to_string(), "edges[0].from[1]");
    }
}
