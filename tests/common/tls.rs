//! Certificates for the TLS tests, made with `sta ca` itself.

use std::path::Path;
use std::process::Command;

/// `sta ca ARGS`, which must succeed.
pub fn sta_ca(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_sta"))
        .arg("ca")
        .args(args)
        .output()
        .expect("sta runs");
    assert!(
        out.status.success(),
        "sta ca {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `--tls-*` flags of the certificate `DIR/NAME.crt` (key beside it)
/// trusting the CA certificate `ca`.
pub fn tls_flags(dir: &Path, name: &str, ca: &Path) -> Vec<String> {
    let path = |p: &Path| p.to_str().expect("UTF-8 temp path").to_owned();
    vec![
        "--tls-cert".into(),
        path(&dir.join(format!("{name}.crt"))),
        "--tls-key".into(),
        path(&dir.join(format!("{name}.key"))),
        "--tls-ca".into(),
        path(ca),
    ]
}
