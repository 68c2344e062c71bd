//! `sta ls`: the files of a share, from its info dict (the answer to
//! `meta`). Pad files (BEP 47) never reach the disk and are not shown.

use crate::cli::format::{clean, human_bytes};
use crate::json;
use crate::meta::Info;
use crate::meta::info::to_hex;

/// The files a download of `info` creates, as (path, length): paths
/// relative to the share, `/`-separated; a single file is its name.
pub fn shown_files(info: &Info) -> Vec<(String, u64)> {
    info.files()
        .iter()
        .filter(|f| !f.pad)
        .map(|f| match info.path(&f) {
            path if path.is_empty() => (info.name.clone(), f.length),
            path => (path.to_string(), f.length),
        })
        .collect()
}

/// The name as `sta list` and `sta ls` show it: a directory (an info dict
/// with `files`) ends with `/`.
pub fn shown_name(name: &str, dir: bool) -> String {
    match dir {
        true => format!("{}/", clean(name)),
        false => clean(name),
    }
}

/// One line per file, its size right-aligned then its path, and a total
/// line: the files' sizes added up.
pub fn listing(info: &Info) -> String {
    let files = shown_files(info);
    let total: u64 = files.iter().map(|(_, n)| n).sum();
    let count = match files.len() {
        1 => "1 file".to_owned(),
        n => format!("{n} files"),
    };
    let total_line = (
        human_bytes(total),
        format!(
            "total: {count} in {}, info hash {}",
            shown_name(&info.name, info.is_multi()),
            to_hex(&info.info_hash)
        ),
    );
    let rows: Vec<(String, String)> = files
        .iter()
        .map(|(path, n)| (human_bytes(*n), clean(path)))
        .chain(std::iter::once(total_line))
        .collect();
    let width = rows.iter().map(|(s, _)| s.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(size, path)| format!("{size:>width$}  {path}\n"))
        .collect()
}

/// `sta ls --json`: `{"name","info_hash","length","directory",
/// "files":[{"path","length"},...]}`, one line without its `\n`; `length`
/// is the share's, as in `sta list` (pad files included).
pub fn listing_json(info: &Info) -> String {
    #[derive(serde::Serialize)]
    struct Listing<'a> {
        name: &'a str,
        info_hash: String,
        length: u64,
        directory: bool,
        files: Vec<ListedFile>,
    }
    #[derive(serde::Serialize)]
    struct ListedFile {
        path: String,
        length: u64,
    }
    let files = shown_files(info)
        .into_iter()
        .map(|(path, length)| ListedFile { path, length })
        .collect();
    json::to_string(&Listing {
        name: &info.name,
        info_hash: to_hex(&info.info_hash),
        length: info.length,
        directory: info.is_multi(),
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> Info {
        let files = [("a.jpg", 1000), ("sub/c.jpg", 2_500_000), ("z.txt", 5)];
        Info::new_tree(
            "photos",
            &files.into_iter().collect::<crate::meta::files::Listing>(),
            16384,
            vec![0; 20 * 153],
        )
        .unwrap()
    }

    #[test]
    fn a_tree_lists_its_files_and_a_total() {
        let info = tree();
        let text = listing(&info);
        let hash = to_hex(&info.info_hash);
        assert_eq!(
            text,
            format!(
                "1.0 kB  a.jpg\n2.5 MB  sub/c.jpg\n   5 B  z.txt\n2.5 MB  total: 3 files in photos/, info hash {hash}\n"
            )
        );
        assert_eq!(
            listing_json(&info),
            format!(
                r#"{{"name":"photos","info_hash":"{hash}","length":2501005,"directory":true,"files":[{{"path":"a.jpg","length":1000}},{{"path":"sub/c.jpg","length":2500000}},{{"path":"z.txt","length":5}}]}}"#
            )
        );
    }

    #[test]
    fn a_single_file_is_its_name() {
        let info = Info::new("hello.txt", 23, 16384, vec![0; 20]).unwrap();
        let text = listing(&info);
        assert!(text.starts_with("23 B  hello.txt\n23 B  total: 1 file in hello.txt,"));
        assert_eq!(text.lines().count(), 2);
        let text = listing_json(&info);
        assert!(
            text.ends_with(r#""directory":false,"files":[{"path":"hello.txt","length":23}]}"#),
            "{text}"
        );
    }

    #[test]
    fn pad_files_are_hidden() {
        let mut b = b"d5:filesld6:lengthi1000e4:pathl5:a.jpgee".to_vec();
        b.extend_from_slice(b"d4:attr1:p6:lengthi15384e4:pathl4:.pad5:15384ee");
        b.extend_from_slice(b"d6:lengthi10e4:pathl5:b.jpgeee");
        b.extend_from_slice(b"4:name6:padded12:piece lengthi16384e6:pieces40:");
        b.extend_from_slice(&[7; 40]);
        b.push(b'e');
        let info = Info::from_bencoded(&b).unwrap();
        let files = shown_files(&info);
        assert_eq!(
            files,
            [("a.jpg".to_owned(), 1000), ("b.jpg".to_owned(), 10)]
        );
        assert!(listing(&info).contains("1.0 kB  total: 2 files in padded/"));
        assert_eq!(
            json::parse(&listing_json(&info)).unwrap()["length"].as_u64(),
            Some(16394)
        );
    }
}
