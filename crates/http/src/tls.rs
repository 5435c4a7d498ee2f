//! TLS set-up: ivrx uses rustls with the ring provider (no OpenSSL, no aws-lc).

use std::sync::Once;

/// Installs ring as the process-wide rustls provider. Idempotent.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Fails only if another provider was installed first, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
