//! TLS set-up shared by every HTTP client of the process.

/// Installs rustls' ring provider as the process default (once; later calls do nothing).
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
