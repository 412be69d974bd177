use super::*;

const NOW: i64 = 1_700_000_000;

fn sa() -> ObjectRef {
    ObjectRef::new("default", "7d3c6a9e-0000-4000-8000-000000000001")
}

fn claims() -> Claims {
    Claims::new(
        DEFAULT_ISSUER,
        &sa(),
        "kube-system",
        vec![DEFAULT_ISSUER.into()],
        NOW,
        3600,
    )
}

fn verifier(key: &ServiceAccountKey) -> TokenVerifier {
    TokenVerifier::new(
        vec![key.public_key()],
        vec![DEFAULT_ISSUER.into()],
        vec![DEFAULT_ISSUER.into()],
    )
}

fn part(token: &str, i: usize) -> Value {
    let p = token.split('.').nth(i).unwrap();
    serde_json::from_slice(&B64URL.decode(p).unwrap()).unwrap()
}

#[test]
fn signs_upstream_shaped_tokens() {
    let key = ServiceAccountKey::generate().unwrap();
    let c = claims()
        .bound_to_pod(ObjectRef::new("web-0", "pod-uid"))
        .bound_to_node(ObjectRef::new("node-1", "node-uid"));
    let token = key.sign(&c).unwrap();
    assert_eq!(
        part(&token, 0),
        json!({"alg": "ES256", "kid": key.key_id()})
    );
    let body = part(&token, 1);
    assert_eq!(body["iss"], DEFAULT_ISSUER);
    assert_eq!(body["sub"], "system:serviceaccount:kube-system:default");
    assert_eq!(body["aud"], json!([DEFAULT_ISSUER]));
    assert_eq!(
        (body["iat"].as_i64(), body["nbf"].as_i64()),
        (Some(NOW), Some(NOW))
    );
    assert_eq!(body["exp"], NOW + 3600);
    assert_eq!(
        body["kubernetes.io"],
        json!({
            "namespace": "kube-system",
            "node": {"name": "node-1", "uid": "node-uid"},
            "pod": {"name": "web-0", "uid": "pod-uid"},
            "serviceaccount": {"name": "default", "uid": sa().uid},
        })
    );
    assert_eq!(body["jti"].as_str().map(str::len), Some(36));

    let got = verifier(&key).verify_at(&token, NOW + 10).unwrap();
    assert_eq!(got, c);
    let user = got.user();
    assert_eq!(user.name, "system:serviceaccount:kube-system:default");
    assert_eq!(user.uid, sa().uid);
    assert_eq!(
        user.groups,
        [
            "system:serviceaccounts",
            "system:serviceaccounts:kube-system"
        ]
    );
    assert_eq!(
        user.extra["authentication.kubernetes.io/pod-name"],
        ["web-0"]
    );
    assert_eq!(
        user.extra["authentication.kubernetes.io/node-uid"],
        ["node-uid"]
    );
    assert!(user.extra["authentication.kubernetes.io/credential-id"][0].starts_with("JTI="));
}

#[test]
fn rejects_what_upstream_rejects() {
    let key = ServiceAccountKey::generate().unwrap();
    let other = ServiceAccountKey::generate().unwrap();
    let token = key.sign(&claims()).unwrap();
    let v = verifier(&key);

    // Time: a minute of leeway either side.
    assert!(v.verify_at(&token, NOW + 3600 + LEEWAY_SECONDS).is_ok());
    assert_eq!(
        v.verify_at(&token, NOW + 3600 + LEEWAY_SECONDS + 1),
        Err(VerifyError::Expired)
    );
    assert!(v.verify_at(&token, NOW - LEEWAY_SECONDS).is_ok());
    assert_eq!(
        v.verify_at(&token, NOW - LEEWAY_SECONDS - 1),
        Err(VerifyError::NotYetValid)
    );

    // Audience.
    let err = v
        .for_audiences(vec!["vault".into()])
        .verify_at(&token, NOW)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "token audiences [\"{DEFAULT_ISSUER}\"] is invalid for the target audiences [\"vault\"]"
        )
    );
    assert!(
        v.for_audiences(vec!["vault".into(), DEFAULT_ISSUER.into()])
            .verify_at(&token, NOW)
            .is_ok()
    );

    // Issuer.
    let foreign = TokenVerifier::new(vec![key.public_key()], vec!["https://other".into()], vec![]);
    assert_eq!(
        foreign.verify_at(&token, NOW),
        Err(VerifyError::WrongIssuer(DEFAULT_ISSUER.into()))
    );
    // Checked before the signature, as upstream: another issuer's token with another
    // key is "not ours", not a bad signature.
    let mut elsewhere = claims();
    elsewhere.iss = "https://accounts.example".into();
    let err = v
        .verify_at(&other.sign(&elsewhere).unwrap(), NOW)
        .unwrap_err();
    assert!(err.is_not_ours(), "{err:?}");
    assert!(!VerifyError::Expired.is_not_ours());

    // Signature: another key, a changed payload, a changed signature.
    assert_eq!(
        verifier(&other).verify_at(&token, NOW),
        Err(VerifyError::UnknownKey)
    );
    let rotated = TokenVerifier::new(
        vec![other.public_key(), key.public_key()],
        vec![DEFAULT_ISSUER.into()],
        vec![],
    );
    assert!(
        rotated.verify_at(&token, NOW).is_ok(),
        "old keys still verify"
    );
    let no_kid = format!(
        "{}.{}",
        B64URL.encode(r#"{"alg":"ES256"}"#),
        token.split_once('.').unwrap().1
    );
    assert_eq!(
        v.verify_at(&no_kid, NOW),
        Err(VerifyError::BadSignature),
        "header is signed"
    );
    let mut parts: Vec<String> = token.split('.').map(String::from).collect();
    let mut body = part(&token, 1);
    body["sub"] = json!("system:serviceaccount:kube-system:admin");
    parts[1] = B64URL.encode(body.to_string());
    assert_eq!(
        v.verify_at(&parts.join("."), NOW),
        Err(VerifyError::BadSignature)
    );
    let mut sig = B64URL.decode(token.split('.').nth(2).unwrap()).unwrap();
    sig[5] ^= 1;
    let tampered = format!(
        "{}.{}",
        token.rsplit_once('.').unwrap().0,
        B64URL.encode(sig)
    );
    assert_eq!(v.verify_at(&tampered, NOW), Err(VerifyError::BadSignature));

    // alg "none" and other shapes.
    let none = format!(
        "{}.{}.",
        B64URL.encode(r#"{"alg":"none"}"#),
        token.split('.').nth(1).unwrap()
    );
    assert_eq!(
        v.verify_at(&none, NOW),
        Err(VerifyError::UnsupportedAlgorithm("none".into()))
    );
    for bad in ["", "a.b", "a.b.c.d", "!!.!!.!!"] {
        assert!(
            matches!(v.verify_at(bad, NOW), Err(VerifyError::Malformed(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn missing_private_claims_are_rejected() {
    let key = ServiceAccountKey::generate().unwrap();
    let mut c = claims();
    c.kubernetes.namespace.clear();
    let token = key.sign(&c).unwrap();
    assert_eq!(
        verifier(&key).verify_at(&token, NOW),
        Err(VerifyError::MissingClaim("kubernetes.io namespace"))
    );
}

#[test]
fn single_string_audience_is_read() {
    let c: Claims = serde_json::from_value(json!({
        "aud": "api", "exp": 2, "iat": 1, "nbf": 1, "iss": "i", "sub": "s",
        "kubernetes.io": {"namespace": "n", "serviceaccount": {"name": "a", "uid": "u"}},
    }))
    .unwrap();
    assert_eq!(c.aud, ["api"]);
    assert_eq!(c.jti, None);
}

#[test]
fn keys_round_trip_and_publish() {
    let key = ServiceAccountKey::generate().unwrap();
    let again = ServiceAccountKey::from_pem(&key.to_pem()).unwrap();
    assert_eq!(again.public_key(), key.public_key());
    assert!(ServiceAccountKey::from_pem("junk").is_err());

    // The key ID is upstream's: SHA-256 of the DER SubjectPublicKeyInfo, as rcgen
    // (an independent encoder) writes it.
    let rc = rcgen::KeyPair::from_pem(&key.to_pem()).unwrap();
    use rcgen::PublicKeyData;
    assert_eq!(rc.subject_public_key_info(), key.public_key().spki_der());
    assert_eq!(
        key.key_id(),
        B64URL.encode(Sha256::digest(rc.subject_public_key_info()))
    );

    let set = jwks(&[key.public_key()]);
    let jwk = &set["keys"][0];
    assert_eq!(
        (
            jwk["kty"].as_str(),
            jwk["crv"].as_str(),
            jwk["alg"].as_str()
        ),
        (Some("EC"), Some("P-256"), Some("ES256"))
    );
    assert_eq!(jwk["kid"], key.key_id());
    let x = B64URL.decode(jwk["x"].as_str().unwrap()).unwrap();
    let y = B64URL.decode(jwk["y"].as_str().unwrap()).unwrap();
    assert_eq!([&[4u8][..], &x, &y].concat(), key.public_key().point);
    let doc = openid_configuration(DEFAULT_ISSUER, "https://10.0.0.1:6443/openid/v1/jwks");
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["ES256"])
    );
    assert!(!format!("{key:?}").contains("PRIVATE"));
}
