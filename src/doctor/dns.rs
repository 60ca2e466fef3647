//! The doctor's DNS questions, through hickory-resolver on tokio: TXT and MX records, asked of
//! `doctor.nameserver` or, when that is empty, the system's resolvers.
//!
//! Every name is asked as a fully qualified name, so no search domain of `/etc/resolv.conf` is appended. An
//! answer with no records and a name that does not exist are the same to the doctor: nothing is published.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, anyhow};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::{Name, ResolveError};

use crate::configuration::DoctorSettings;

/// Why a question got no records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DnsError {
    /// The name does not exist, or has no record of that type.
    NotFound,
    /// The server did not answer usefully (timeout, SERVFAIL, refused); the text says which.
    Failed(String),
}

pub(crate) struct Dns {
    resolver: TokioResolver,
    /// Set when the server did not answer at all (a timeout, no connection): later questions are not asked,
    /// so a wrong `doctor.nameserver` costs one timeout, not one per record.
    unanswered: std::sync::Mutex<Option<String>>,
}

impl Dns {
    /// A resolver for `doctor.nameserver` (UDP, and TCP for long answers) or the system's.
    pub(crate) fn new(settings: &DoctorSettings) -> anyhow::Result<Self> {
        let timeout = Duration::try_from(settings.timeout).unwrap_or(Duration::from_secs(10));
        let server = settings.nameserver.trim();
        let mut builder = if server.is_empty() {
            TokioResolver::builder_tokio().context("cannot read the system's DNS configuration (/etc/resolv.conf)")?
        } else {
            let address: SocketAddr = server.parse().map_err(|_| {
                anyhow!("doctor.nameserver: `{server}` is not an IP:PORT address, e.g. \"127.0.0.1:53\"")
            })?;
            let mut config = ResolverConfig::new();
            config.add_name_server(NameServerConfig::new(address, Protocol::Udp));
            config.add_name_server(NameServerConfig::new(address, Protocol::Tcp));
            TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
        };
        let options = builder.options_mut();
        options.timeout = timeout;
        options.attempts = 2;
        // Each run asks once; a cache would only hide a record just published.
        options.cache_size = 0;
        Ok(Self { resolver: builder.build(), unanswered: std::sync::Mutex::new(None) })
    }

    /// The TXT records at `name`, each record's strings joined as SPF and DKIM read them.
    pub(crate) async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        let name = fqdn(name)?;
        self.answering()?;
        let lookup = self.resolver.txt_lookup(name).await.map_err(|e| self.failure(e))?;
        let records: Vec<String> = lookup
            .iter()
            .map(|txt| txt.txt_data().iter().map(|part| String::from_utf8_lossy(part)).collect::<String>())
            .collect();
        if records.is_empty() { Err(DnsError::NotFound) } else { Ok(records) }
    }

    /// The mail exchangers of `name`, by preference.
    pub(crate) async fn mx(&self, name: &str) -> Result<Vec<String>, DnsError> {
        let name = fqdn(name)?;
        self.answering()?;
        let lookup = self.resolver.mx_lookup(name).await.map_err(|e| self.failure(e))?;
        let mut records: Vec<(u16, String)> = lookup
            .iter()
            .map(|mx| (mx.preference(), mx.exchange().to_utf8().trim_end_matches('.').to_owned()))
            .collect();
        records.sort();
        if records.is_empty() {
            Err(DnsError::NotFound)
        } else {
            Ok(records.into_iter().map(|(_, host)| host).collect())
        }
    }
}

fn fqdn(name: &str) -> Result<Name, DnsError> {
    let absolute = format!("{}.", name.trim_end_matches('.'));
    Name::from_utf8(&absolute).map_err(|e| DnsError::Failed(format!("`{name}` is not a DNS name: {e}")))
}

impl Dns {
    /// `Err` when an earlier question got no answer at all.
    fn answering(&self) -> Result<(), DnsError> {
        match self.unanswered.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            Some(why) => Err(DnsError::Failed(format!("{why} (an earlier question got no answer: not asked)"))),
            None => Ok(()),
        }
    }

    fn failure(&self, error: ResolveError) -> DnsError {
        if error.is_no_records_found() || error.is_nx_domain() {
            return DnsError::NotFound;
        }
        let why = error.to_string();
        let silent =
            error.proto().is_some_and(|p| p.is_no_connections() || matches!(p.kind(), ProtoErrorKind::Timeout));
        if silent {
            *self.unanswered.lock().unwrap_or_else(|e| e.into_inner()) = Some(why.clone());
        }
        DnsError::Failed(why)
    }
}
