//! The control plane's key material: a CA, the API server's serving certificate,
//! an admin client certificate (group `system:masters`), and the service-account
//! signing key — generated fresh for every control plane, as envtest does.

use std::path::{Path, PathBuf};

use anyhow::Result;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// PEM files written into the control plane's folder.
pub struct Certs {
    pub ca_pem: String,
    pub ca_file: PathBuf,
    pub serving_cert_file: PathBuf,
    pub serving_key_file: PathBuf,
    pub admin_cert_pem: String,
    pub admin_key_pem: String,
    pub service_account_key_file: PathBuf,
    pub service_account_public_key_file: PathBuf,
}

fn write(dir: &Path, name: &str, contents: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, contents)?;
    Ok(path)
}

impl Certs {
    pub fn generate(dir: &Path) -> Result<Self> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "iwd-testbed-ca");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

        let mut serving =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
        serving
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let serving_key = KeyPair::generate()?;
        let serving_cert = serving.signed_by(&serving_key, &ca)?;

        let mut admin = CertificateParams::new(Vec::<String>::new())?;
        admin.distinguished_name.push(DnType::CommonName, "admin");
        admin
            .distinguished_name
            .push(DnType::OrganizationName, "system:masters");
        admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let admin_key = KeyPair::generate()?;
        let admin_cert = admin.signed_by(&admin_key, &ca)?;

        let service_account_key = KeyPair::generate()?;
        Ok(Self {
            ca_pem: ca.pem(),
            ca_file: write(dir, "ca.crt", &ca.pem())?,
            serving_cert_file: write(dir, "apiserver.crt", &serving_cert.pem())?,
            serving_key_file: write(dir, "apiserver.key", &serving_key.serialize_pem())?,
            admin_cert_pem: admin_cert.pem(),
            admin_key_pem: admin_key.serialize_pem(),
            service_account_key_file: write(
                dir,
                "service-account.key",
                &service_account_key.serialize_pem(),
            )?,
            service_account_public_key_file: write(
                dir,
                "service-account.pub",
                &service_account_key.public_key_pem(),
            )?,
        })
    }
}
