//! mdtoken: stateless signed tokens for mass deployment of endpoint software.
//!
//! An administrator mints a *mass deployment token* (a compact JWS signed with Ed25519),
//! embeds it in an unattended install command, and the master accepts a device's
//! activation only if the token's signature and time claims check out against a small
//! key ring. This crate holds everything that is not I/O glue:
//!
//! - [`keyring`]: the public key ring (`keyring.json`) and its validation;
//! - [`store`]: the keys directory and every operation that changes it;
//! - [`mint`] and [`verify`]: the two ends of a token's life;
//! - [`install`]: install command templates; [`config`]: settings.
//!
//! ```
//! use mdtoken::{keyring::KeyRing, key::SecretKey, mint::{Expiry, Minter}, verify::{Reason, Verifier}};
//!
//! let now = 1_800_000_000;
//! let key = SecretKey::generate();
//! let ring = KeyRing::new("https://mdm.example", "mass-deployment", key.public(), now).unwrap();
//! let minter = Minter::new(key, &ring.issuer, &ring.audience);
//! let minted = minter.mint(Some("Q3 rollout"), Expiry::At(now + 3600), now).unwrap();
//!
//! let verifier = Verifier::new(&ring, 60);
//! let ok = verifier.verify(minted.token.as_bytes(), now + 10).unwrap();
//! assert_eq!(ok.claims.name.as_deref(), Some("Q3 rollout"));
//! let late = verifier.verify(minted.token.as_bytes(), now + 3600 + 60).unwrap_err();
//! assert_eq!(late.reason, Reason::TokenExpired);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod b64;
pub mod cache;
pub mod clock;
pub mod config;
pub mod fsutil;
pub mod install;
pub mod key;
pub mod keyring;
pub mod ledger;
pub mod logline;
pub mod logwriter;
pub mod mint;
pub mod server;
pub mod store;
pub mod token;
pub mod verify;
