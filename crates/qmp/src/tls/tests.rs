use super::*;

fn ends_between(chunks: &[&str]) -> Vec<bool> {
    let mut b = Boundary::default();
    chunks
        .iter()
        .map(|c| {
            b.feed(c.as_bytes());
            b.between_values()
        })
        .collect()
}

#[test]
fn boundary_follows_objects_strings_and_escapes() {
    assert_eq!(ends_between(&[r#"{"execute": "x", "id": 1}"#]), [true]);
    assert_eq!(ends_between(&[r#"{"execute": "#, r#""qmp_cap"#, r#"abilities"}"#]), [false, false, true]);
    assert_eq!(ends_between(&[r#"{"a": "}\""#, r#"}"}"#]), [false, true]);
    assert_eq!(ends_between(&[r#"{"a": [1, {"b": "]"}]"#, "}{", "}"]), [false, false, true]);
    assert_eq!(ends_between(&["{'a': '}'", "}"]), [false, true]);
    let mut b = Boundary::default();
    b.feed(&[b'{', b'"', 0xFF]);
    assert!(b.between_values(), "0xFF starts afresh, as QEMU's parser does");
}

#[test]
fn host_of_strips_the_port_and_brackets() {
    assert_eq!(host_of("127.0.0.1:4444"), "127.0.0.1");
    assert_eq!(host_of("[::1]:4444"), "::1");
    assert_eq!(host_of("vm1.example:1"), "vm1.example");
}

#[test]
fn server_names_are_dns_names_or_addresses() {
    assert!(parse_server_name("localhost").is_ok());
    assert!(parse_server_name("127.0.0.1").is_ok());
    assert!(parse_server_name("[::1]").is_ok());
    let e = parse_server_name("not a name!").unwrap_err();
    assert_eq!(e.to_string(), r#"invalid TLS server name "not a name!": not a DNS name or an IP address"#);
}

#[test]
fn pem_problems_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "no PEM here\n").unwrap();
    let e = TlsConfig::builder().ca_file(&empty).build().unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("the TLS CA certificate file {} holds no PEM certificate", empty.display())
    );
    let e = TlsConfig::builder().build().unwrap_err();
    assert!(matches!(e, TlsError::NoCa), "{e}");
    let e = TlsConfig::builder().ca_pem("-----BEGIN CERTIFICATE-----\nnot base64!\n").build().unwrap_err();
    assert!(e.to_string().starts_with("the TLS CA certificate file (given in memory) not valid PEM"), "{e}");
}
