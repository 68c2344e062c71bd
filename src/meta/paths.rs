//! The rules for the paths of a multi-file torrent, checked before
//! anything touches the disk: each component a plain name (no `..`, no
//! separator, no control character, not empty, at most `MAX_NAME_LEN`
//! bytes), a bounded depth and length, and no two files that would land
//! on the same place (duplicates, or a file where another file needs a
//! directory).

use super::info::{NameError, check_name};
use crate::limits::{MAX_PATH_DEPTH, MAX_PATH_LEN};
use std::collections::HashMap;
use std::collections::hash_map::Entry;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    /// A file with no path components.
    Empty,
    Component(String, NameError),
    /// More components than `MAX_PATH_DEPTH`.
    TooDeep(usize),
    /// Longer than `MAX_PATH_LEN` bytes, joined with `/`.
    TooLong(usize),
    /// Two files with the same path.
    Duplicate(String),
    /// A file whose path is also the directory of another file.
    FileIsDirectory(String),
}

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PathError::Empty => write!(f, "a file has an empty path"),
            PathError::Component(c, e) => write!(f, "path component {c:?}: {e}"),
            PathError::TooDeep(n) => {
                write!(
                    f,
                    "a path of {n} components is deeper than {MAX_PATH_DEPTH}"
                )
            }
            PathError::TooLong(n) => {
                write!(f, "a path of {n} bytes is longer than {MAX_PATH_LEN}")
            }
            PathError::Duplicate(p) => write!(f, "two files are named {p:?}"),
            PathError::FileIsDirectory(p) => {
                write!(f, "{p:?} is a file and also the directory of another file")
            }
        }
    }
}

impl std::error::Error for PathError {}

/// Checks one file's path components.
pub fn check_path<S: AsRef<str>>(components: &[S]) -> Result<(), PathError> {
    if components.is_empty() {
        return Err(PathError::Empty);
    }
    if components.len() > MAX_PATH_DEPTH {
        return Err(PathError::TooDeep(components.len()));
    }
    for c in components {
        let c = c.as_ref();
        check_name(c).map_err(|e| PathError::Component(c.to_owned(), e))?;
    }
    let len = joined_len(components);
    if len > MAX_PATH_LEN {
        return Err(PathError::TooLong(len));
    }
    Ok(())
}

fn joined_len<S: AsRef<str>>(components: &[S]) -> usize {
    components.iter().map(|c| c.as_ref().len()).sum::<usize>() + components.len() - 1
}

/// Finds paths (each already valid for [`check_path`]) that would collide
/// on disk: the same path twice, or a file that is another's directory.
/// The paths go into a tree of components, each component hashed once, so
/// time and memory are linear in the total length of the paths (a set of
/// every directory spelt out in full would hold a copy of each path per
/// level: about 100 KiB for one 3 KiB path of 64 components).
pub fn check_tree<'a, P: IntoIterator<Item = &'a str>>(
    paths: impl IntoIterator<Item = P>,
) -> Result<(), PathError> {
    // Node 0 is the top directory; (node, component) -> child node.
    let mut children: HashMap<(usize, &'a str), usize> = HashMap::new();
    let mut is_file = vec![false];
    let mut path: Vec<&'a str> = Vec::new();
    for components in paths {
        path.clear();
        path.extend(components);
        if path.is_empty() {
            return Err(PathError::Empty);
        }
        let mut node = 0;
        for (i, c) in path.iter().enumerate() {
            let last = i + 1 == path.len();
            let fresh = is_file.len();
            match children.entry((node, *c)) {
                Entry::Occupied(e) => {
                    node = *e.get();
                    if is_file[node] {
                        return Err(if last {
                            PathError::Duplicate(joined(&path))
                        } else {
                            PathError::FileIsDirectory(joined(&path[..=i]))
                        });
                    }
                    if last {
                        return Err(PathError::FileIsDirectory(joined(&path)));
                    }
                }
                Entry::Vacant(e) => {
                    e.insert(fresh);
                    is_file.push(last);
                    node = fresh;
                }
            }
        }
    }
    Ok(())
}

fn joined<S: AsRef<str>>(components: &[S]) -> String {
    let parts: Vec<&str> = components.iter().map(AsRef::as_ref).collect();
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(paths: &[&[&str]]) -> Result<(), PathError> {
        check_tree(paths.iter().map(|p| p.iter().copied()))
    }

    #[test]
    fn plain_paths_pass() {
        check_path(&["a", "b.txt"]).unwrap();
        check_path(&["données", "日本語.bin"]).unwrap();
        tree(&[&["a", "x"], &["a", "y"], &["b"]]).unwrap();
    }

    #[test]
    fn hostile_components_are_refused() {
        let bad: &[&[&str]] = &[
            &[],
            &[".."],
            &["a", "..", "b"],
            &["."],
            &[""],
            &["a", ""],
            &["/etc"],
            &["a/b"],
            &["a\\b"],
            &["a\u{0}b"],
            &["a\nb"],
        ];
        for p in bad {
            assert!(check_path(p).is_err(), "{p:?}");
        }
        let long = "x".repeat(256);
        assert!(matches!(
            check_path(&[long.as_str()]),
            Err(PathError::Component(_, NameError::TooLong(256)))
        ));
        let deep = vec!["d"; MAX_PATH_DEPTH + 1];
        assert_eq!(
            check_path(&deep),
            Err(PathError::TooDeep(MAX_PATH_DEPTH + 1))
        );
        let wide = vec!["x".repeat(255); MAX_PATH_LEN / 256 + 1];
        assert!(matches!(check_path(&wide), Err(PathError::TooLong(_))));
    }

    #[test]
    fn colliding_paths_are_refused() {
        assert_eq!(
            tree(&[&["a", "x"], &["a", "x"]]),
            Err(PathError::Duplicate("a/x".into()))
        );
        assert_eq!(
            tree(&[&["a"], &["a", "x"]]),
            Err(PathError::FileIsDirectory("a".into()))
        );
        assert_eq!(
            tree(&[&["a", "x"], &["a"]]),
            Err(PathError::FileIsDirectory("a".into()))
        );
        assert_eq!(
            tree(&[&["a", "b", "c"], &["a", "b"]]),
            Err(PathError::FileIsDirectory("a/b".into()))
        );
        assert_eq!(tree(&[&["a"], &[]]), Err(PathError::Empty));
        // A prefix of a name is not its directory.
        tree(&[&["a"], &["ab", "c"], &["a.b"], &["b", "a"]]).unwrap();
    }
}
