//! The globs of `sta get --only`, over a file's path in a tree (its
//! components joined by `/`): `*` matches any run of characters but `/`,
//! `**` any run including `/`, `?` one character but `/`; anything else
//! matches itself.

/// True when `glob` matches all of `path`.
pub fn matches(glob: &str, path: &str) -> bool {
    let g: Vec<char> = glob.chars().collect();
    let p: Vec<char> = path.chars().collect();
    // Dynamic programming over (glob position, path position): linear in
    // |glob| x |path|, with no backtracking blow-up on hostile globs.
    let mut row = vec![false; p.len() + 1];
    row[0] = true;
    let mut i = 0;
    while i < g.len() {
        let mut next = vec![false; p.len() + 1];
        match g[i] {
            '*' if g.get(i + 1) == Some(&'*') => {
                let mut any = false;
                for j in 0..=p.len() {
                    any |= row[j];
                    next[j] = any;
                }
                i += 1;
            }
            '*' => {
                let mut run = false;
                for j in 0..=p.len() {
                    run = row[j] || (run && j > 0 && p[j - 1] != '/');
                    next[j] = run;
                }
            }
            c => {
                for j in 1..=p.len() {
                    let hit = if c == '?' {
                        p[j - 1] != '/'
                    } else {
                        p[j - 1] == c
                    };
                    next[j] = row[j - 1] && hit;
                }
            }
        }
        row = next;
        i += 1;
    }
    row[p.len()]
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn stars_questions_and_literals() {
        assert!(matches("a.bin", "a.bin"));
        assert!(!matches("a.bin", "b/a.bin"));
        assert!(matches("*.bin", "a.bin"));
        assert!(!matches("*.bin", "d/a.bin"));
        assert!(matches("d/*.bin", "d/a.bin"));
        assert!(matches("**.bin", "d/e/a.bin"));
        assert!(matches("d/**", "d/e/a.bin"));
        assert!(matches("**/a.bin", "d/e/a.bin"));
        assert!(matches("shard-00?.bin", "shard-007.bin"));
        assert!(!matches("shard-00?.bin", "shard-0007.bin"));
        assert!(matches("données/*", "données/日本.bin"));
        assert!(!matches("", "a"));
        assert!(matches("*", ""));
        let hostile = "*a".repeat(100);
        assert!(!matches(&hostile, &"a".repeat(99)));
    }
}
