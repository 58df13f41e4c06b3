//! The Ed25519 backend: which curve25519-dalek backend this build carries and which one
//! it takes on this CPU, and that the one taken computes what the portable serial code
//! computes, on known vectors and on random scalars.
//!
//! curve25519-dalek picks its vector backend once per process from the CPU (AVX-512 IFMA,
//! else AVX2, else serial) and offers no switch to force another, so a run checks the
//! backend its CPU selects. To check the AVX2 and serial paths on a CPU with IFMA, build
//! without the AVX-512 backend (BENCHMARKS.md, "Ed25519 backend"):
//!
//! ```text
//! MDTOKEN_EXPECT_BACKEND=simd RUSTFLAGS='--cfg curve25519_dalek_backend="simd"' \
//!     cargo test --test backend -- --nocapture
//! MDTOKEN_EXPECT_BACKEND=serial RUSTFLAGS='--cfg curve25519_dalek_backend="serial"' \
//!     cargo test --test backend -- --nocapture
//! ```
//!
//! An AVX-512 build that falls back on a CPU without IFMA runs the same AVX2 code as the
//! `simd` build (the crate compiles both under the same cfg), so the first line covers it.

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{Identity as _, MultiscalarMul as _, VartimeMultiscalarMul as _};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha512};

use mdtoken::key::SecretKey;
use mdtoken::keyring::KeyRing;
use mdtoken::mint::{Expiry, Minter};
use mdtoken::verify::{Reason, Verifier};

/// The backend set by `--cfg curve25519_dalek_backend`, if any.
fn configured() -> Option<&'static str> {
    if cfg!(curve25519_dalek_backend = "avx512") {
        Some("avx512")
    } else if cfg!(curve25519_dalek_backend = "simd") {
        Some("simd")
    } else if cfg!(curve25519_dalek_backend = "serial") {
        Some("serial")
    } else if cfg!(curve25519_dalek_backend = "fiat") {
        Some("fiat")
    } else {
        None
    }
}

/// The backends compiled into curve25519-dalek, following its build script: an explicit
/// cfg wins; otherwise x86_64 gets AVX2 (and AVX-512 only when the target CPU is known to
/// have IFMA), everything else serial.
fn compiled() -> (bool, bool) {
    let x86_64 = cfg!(all(target_arch = "x86_64", target_pointer_width = "64"));
    match configured() {
        Some("avx512") => (true, true),
        Some("simd") => (false, true),
        Some(_) => (false, false),
        None => (
            x86_64 && cfg!(target_feature = "avx512ifma") && cfg!(target_feature = "avx512vl"),
            x86_64,
        ),
    }
}

#[cfg(target_arch = "x86_64")]
fn cpu_has(feature: &str) -> bool {
    match feature {
        "avx512ifma" => std::arch::is_x86_feature_detected!("avx512ifma"),
        "avx512vl" => std::arch::is_x86_feature_detected!("avx512vl"),
        "avx2" => std::arch::is_x86_feature_detected!("avx2"),
        _ => false,
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn cpu_has(_: &str) -> bool {
    false
}

/// The backend curve25519-dalek selects at run time, by the same rule it applies.
fn selected() -> &'static str {
    let (avx512, avx2) = compiled();
    if avx512 && cpu_has("avx512ifma") && cpu_has("avx512vl") {
        "avx512ifma"
    } else if avx2 && cpu_has("avx2") {
        "avx2"
    } else {
        "serial"
    }
}

/// A deterministic scalar from a label.
fn scalar(label: &str, i: u64) -> Scalar {
    let mut h = Sha512::new();
    h.update(label.as_bytes());
    h.update(i.to_le_bytes());
    Scalar::from_bytes_mod_order_wide(&h.finalize().into())
}

#[test]
fn the_build_carries_the_expected_backend() {
    let expected = std::env::var("MDTOKEN_EXPECT_BACKEND").ok();
    eprintln!(
        "curve25519_dalek_backend cfg: {}; compiled (avx512, avx2): {:?}; CPU: avx512ifma {}, avx512vl {}, avx2 {}; selected: {}",
        configured().unwrap_or("(none)"),
        compiled(),
        cpu_has("avx512ifma"),
        cpu_has("avx512vl"),
        cpu_has("avx2"),
        selected()
    );
    match expected.as_deref() {
        // The project's default build (.cargo/config.toml) on x86_64.
        None if cfg!(all(target_arch = "x86_64", target_pointer_width = "64")) => assert_eq!(
            configured(),
            Some("avx512"),
            "the default x86_64 build should carry the AVX-512 backend; is RUSTFLAGS set \
             in the environment (it replaces .cargo/config.toml's flags)?"
        ),
        None => {}
        Some(want) => assert_eq!(configured(), Some(want), "MDTOKEN_EXPECT_BACKEND"),
    }
}

/// The selected backend's variable-base, double-base and multiscalar multiplications
/// against the fixed-base table and point additions, which are serial code in every build.
#[test]
fn selected_backend_agrees_with_serial_arithmetic() {
    eprintln!("checking the {} backend", selected());
    for i in 0..64 {
        let x = scalar("x", i);
        let a = scalar("a", i);
        let b = scalar("b", i);
        let big_a = EdwardsPoint::mul_base(&x);
        let want = EdwardsPoint::mul_base(&(a * x + b));
        assert_eq!(
            EdwardsPoint::vartime_double_scalar_mul_basepoint(&a, &big_a, &b),
            want,
            "double-base, round {i}"
        );
        assert_eq!(
            big_a * a,
            EdwardsPoint::mul_base(&(a * x)),
            "variable-base {i}"
        );
        assert_eq!(
            big_a * a + ED25519_BASEPOINT_POINT * b,
            want,
            "variable-base sum {i}"
        );
    }
    // Straus for a few points, Pippenger (dalek switches at 190) for many.
    for n in [2usize, 7, 64, 256] {
        let xs: Vec<Scalar> = (0..n as u64).map(|i| scalar("px", i)).collect();
        let ks: Vec<Scalar> = (0..n as u64).map(|i| scalar("k", i + n as u64)).collect();
        let points: Vec<EdwardsPoint> = xs.iter().map(EdwardsPoint::mul_base).collect();
        let sum = xs.iter().zip(&ks).map(|(x, k)| x * k).sum::<Scalar>();
        let want = EdwardsPoint::mul_base(&sum);
        assert_eq!(
            EdwardsPoint::vartime_multiscalar_mul(&ks, &points),
            want,
            "vartime multiscalar, {n} points"
        );
        assert_eq!(
            EdwardsPoint::multiscalar_mul(&ks, &points),
            want,
            "constant-time multiscalar, {n} points"
        );
    }
    assert_eq!(
        EdwardsPoint::vartime_double_scalar_mul_basepoint(
            &Scalar::ZERO,
            &ED25519_BASEPOINT_POINT,
            &Scalar::ZERO
        ),
        EdwardsPoint::identity()
    );
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("hex")
}

/// RFC 8032 §7.1 tests 1 to 3 and SHA(abc): the known answers, signed and strictly
/// verified by whichever backend this CPU selects.
#[test]
fn rfc8032_vectors_verify_on_the_selected_backend() {
    const VECTORS: [(&str, &str, &str, &str); 4] = [
        (
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
        (
            "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
            "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
            "af82",
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
        ),
        (
            "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
            "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
            "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
        ),
    ];
    for (i, (seed, public, message, signature)) in VECTORS.iter().enumerate() {
        let key = SigningKey::from_bytes(&unhex(seed).try_into().unwrap());
        let public: [u8; 32] = unhex(public).try_into().unwrap();
        assert_eq!(
            key.verifying_key().to_bytes(),
            public,
            "vector {i}: public key"
        );
        let message = unhex(message);
        let want: [u8; 64] = unhex(signature).try_into().unwrap();
        assert_eq!(key.sign(&message).to_bytes(), want, "vector {i}: signature");
        let vk = VerifyingKey::from_bytes(&public).unwrap();
        let sig = Signature::from_bytes(&want);
        assert!(
            vk.verify_strict(&message, &sig).is_ok(),
            "vector {i}: verify"
        );
        let ours = mdtoken::key::PublicKey::from_bytes(&public).unwrap();
        assert!(
            ours.verify(&message, &want),
            "vector {i}: PublicKey::verify"
        );
        for bit in [0usize, 7, 255, 256, 511] {
            let mut bad = want;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(
                !ours.verify(&message, &bad),
                "vector {i}: flipped bit {bit}"
            );
        }
        let mut other = message.clone();
        other.push(0);
        assert!(!ours.verify(&other, &want), "vector {i}: longer message");
    }
}

/// Minted tokens verify, and one flipped signature bit is always `bad_signature`, on the
/// selected backend.
#[test]
fn minted_tokens_verify_on_the_selected_backend() {
    let now = 1_800_000_000;
    let key = SecretKey::generate();
    let ring = KeyRing::new("iss", "aud", key.public(), now).unwrap();
    let minter = Minter::new(key, "iss", "aud");
    let verifier = Verifier::new(&ring, 60);
    for i in 0..200 {
        let token = minter
            .mint(Some(&format!("t{i}")), Expiry::At(now + 3600), now)
            .unwrap()
            .token;
        assert!(verifier.verify(token.as_bytes(), now).is_ok(), "token {i}");
        let (input, sig) = token.rsplit_once('.').unwrap();
        let mut sig: [u8; 64] = mdtoken::b64::decode_array(sig).unwrap();
        sig[i % 64] ^= 1 << (i % 8);
        let forged = format!("{input}.{}", mdtoken::b64::encode(sig));
        assert_eq!(
            verifier.verify(forged.as_bytes(), now).unwrap_err().reason,
            Reason::BadSignature,
            "token {i}, flipped signature"
        );
    }
}
