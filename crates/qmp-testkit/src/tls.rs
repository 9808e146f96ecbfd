//! Certificates for TLS tests, made by the test itself with `openssl` (scripts/install-deps.sh
//! installs it when missing): a CA, a server certificate for `localhost` and `127.0.0.1` in
//! QEMU's layout, a client certificate signed by the same CA, and a second CA with a client
//! certificate of its own, trusted by nobody. EC P-256 keys, valid for 30 days from now.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::tempdir;

/// How to install what these certificates need.
pub const INSTALL_HINT: &str = "install openssl: scripts/install-deps.sh (Debian: apt-get install openssl)";

/// A set of certificates in a temporary directory, removed on drop.
///
/// Layout: `server/` is QEMU's `dir=` for `tls-creds-x509,endpoint=server` (`ca-cert.pem`,
/// `server-cert.pem`, `server-key.pem`); `client-cert.pem` and `client-key.pem` are signed by
/// the same CA; `other/ca-cert.pem` is a CA that signed neither, and `other/client-cert.pem`
/// with `other/client-key.pem` a client certificate it signed.
pub struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    /// Makes every certificate and key (about 50 ms).
    pub fn generate() -> Certs {
        require_openssl();
        let dir = tempdir();
        let root = dir.path();
        let server = root.join("server");
        let other = root.join("other");
        for d in [&server, &other] {
            std::fs::create_dir(d).expect("create a certificate directory");
        }
        make_ca(&server, "qmp test CA");
        make_leaf(
            &server,
            "server",
            "localhost",
            "serverAuth",
            Some("DNS:localhost,IP:127.0.0.1"),
            &server,
            &server,
        );
        make_leaf(&server, "client", "qmp test client", "clientAuth", None, root, root);
        make_ca(&other, "another CA");
        make_leaf(&other, "client", "untrusted client", "clientAuth", None, &other, &other);
        Certs { dir }
    }

    /// QEMU's `dir=` for the server side.
    pub fn server_dir(&self) -> PathBuf {
        self.dir.path().join("server")
    }

    /// The CA that signed the server's and the client's certificates.
    pub fn ca(&self) -> PathBuf {
        self.server_dir().join("ca-cert.pem")
    }

    /// A client certificate signed by [`ca`](Self::ca).
    pub fn client_cert(&self) -> PathBuf {
        self.dir.path().join("client-cert.pem")
    }

    /// The key of [`client_cert`](Self::client_cert).
    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client-key.pem")
    }

    /// A CA that signed neither the server's certificate nor the client's.
    pub fn other_ca(&self) -> PathBuf {
        self.dir.path().join("other/ca-cert.pem")
    }

    /// A client certificate signed by [`other_ca`](Self::other_ca), which the server does not
    /// trust.
    pub fn untrusted_client_cert(&self) -> PathBuf {
        self.dir.path().join("other/client-cert.pem")
    }

    /// The key of [`untrusted_client_cert`](Self::untrusted_client_cert).
    pub fn untrusted_client_key(&self) -> PathBuf {
        self.dir.path().join("other/client-key.pem")
    }

    /// The directory holding everything.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Panics with an install hint unless `openssl` is on PATH.
pub fn require_openssl() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("openssl"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("openssl not found on PATH; {INSTALL_HINT}"))
}

/// `DIR/ca-cert.pem` and `DIR/ca-key.pem`: a self-signed CA.
fn make_ca(dir: &Path, cn: &str) {
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        s(&dir.join("ca-key.pem")),
        "-out",
        s(&dir.join("ca-cert.pem")),
        "-days",
        "30",
        "-subj",
        &format!("/CN={cn}"),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
}

/// `OUT/NAME-cert.pem` and `OUT/NAME-key.pem`, signed by the CA in `ca_dir`, with the usages
/// QEMU's sanity checks want (digitalSignature, keyEncipherment, the purpose given).
fn make_leaf(ca_dir: &Path, name: &str, cn: &str, purpose: &str, san: Option<&str>, out: &Path, tmp: &Path) {
    let key = out.join(format!("{name}-key.pem"));
    let cert = out.join(format!("{name}-cert.pem"));
    let csr = tmp.join(format!("{name}.csr"));
    let ext = tmp.join(format!("{name}.ext"));
    let mut text = format!(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage={purpose}\n"
    );
    if let Some(san) = san {
        text.push_str(&format!("subjectAltName={san}\n"));
    }
    std::fs::write(&ext, text).expect("write an extensions file");
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        s(&key),
        "-out",
        s(&csr),
        "-subj",
        &format!("/CN={cn}"),
    ]);
    let serial =
        format!("0x{:x}", std::process::id() as u64 * 1000 + cn.len() as u64 + name.len() as u64 * 97);
    openssl(&[
        "x509",
        "-req",
        "-in",
        s(&csr),
        "-CA",
        s(&ca_dir.join("ca-cert.pem")),
        "-CAkey",
        s(&ca_dir.join("ca-key.pem")),
        "-set_serial",
        &serial,
        "-days",
        "30",
        "-extfile",
        s(&ext),
        "-out",
        s(&cert),
    ]);
    let _ = std::fs::remove_file(csr);
    let _ = std::fs::remove_file(ext);
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl: {e}; {INSTALL_HINT}"));
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn s(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}
