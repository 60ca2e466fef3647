//! The sender's DNS as receivers read it: SPF (one record, at most 10 lookups), the DKIM key against the
//! configured key's public half, DMARC, the alignment of From with the DKIM domain and the return path, and
//! the bounce domain's MX.
//!
//! Since February 2024 Gmail and Yahoo refuse bulk mail that fails SPF or DKIM, lacks DMARC or whose From does
//! not align; Outlook.com does the same since May 2025 (`550 5.7.515`). Each check here names the record it
//! read and the record to publish.

use std::collections::HashMap;

use super::dns::{Dns, DnsError};
use super::records::{SPF_LOOKUP_LIMIT, aligned, dkim_public_key, dmarc, is_spf, spf_lookups};
use super::{Check, Group};
use crate::configuration::Settings;
use crate::mailer::DkimSigner;

const G: Group = Group::Dns;

/// Runs the DNS checks, appending one answer per check to `checks`.
pub(crate) async fn run(settings: &Settings, dns: &Dns, checks: &mut Vec<Check>) {
    let identity = match crate::startup::sender_identity(settings) {
        Ok(identity) => identity,
        Err(e) => {
            let fix = "set sender.from to a mailbox on your domain, e.g. \"News <news@example.com>\"";
            checks.push(Check::failure("sender", G, format!("{e:#}"), fix));
            return;
        }
    };
    let from_domain = identity.domain.to_ascii_lowercase();
    spf(dns, &from_domain, checks).await;
    let signer = dkim(settings, dns, checks).await;
    dmarc_check(dns, &from_domain, checks).await;
    checks.push(match &signer {
        Some(signer) if aligned(&from_domain, signer.domain()) => Check::ok(
            "dkim-alignment",
            G,
            format!("From's domain {from_domain} aligns with the DKIM domain d={}", signer.domain()),
        ),
        Some(signer) => Check::failure(
            "dkim-alignment",
            G,
            format!(
                "From's domain {from_domain} does not align with the DKIM domain d={}: DMARC fails",
                signer.domain()
            ),
            format!(
                "sign as the From domain (dkim.domain = \"{from_domain}\") or send From an address on {}",
                signer.domain()
            ),
        ),
        None => Check::failure(
            "dkim-alignment",
            G,
            "no DKIM signature, so nothing aligns with From",
            "turn on [dkim] (see the dkim check)",
        ),
    });
    let Some(bounce) = &identity.bounce else {
        checks.push(Check::ok(
            "spf-alignment",
            G,
            format!("the return path is sender.from, on {from_domain}: SPF aligns with From"),
        ));
        return;
    };
    let bounce_domain = bounce.domain().to_ascii_lowercase();
    checks.push(if aligned(&from_domain, &bounce_domain) {
        Check::ok("spf-alignment", G, format!("the return path's domain {bounce_domain} aligns with From's {from_domain}"))
    } else {
        Check::failure(
            "spf-alignment",
            G,
            format!("the return path's domain {bounce_domain} does not align with From's {from_domain}: SPF passes but cannot count for DMARC"),
            format!("use a bounce address on {from_domain} or a subdomain of it (bounces.address)"),
        )
    });
    if bounce_domain != from_domain {
        spf_record("spf-return-path", dns, &bounce_domain, checks).await;
    }
    bounce_mx(settings, dns, &bounce_domain, checks).await;
}

/// Exactly one `v=spf1` record at `domain`, and no more than 10 DNS lookups to evaluate it.
async fn spf(dns: &Dns, domain: &str, checks: &mut Vec<Check>) {
    let Some(record) = spf_record("spf", dns, domain, checks).await else { return };
    let (count, broken) = spf_lookup_count(dns, &record).await;
    checks.push(match broken {
        Some(problem) => Check::failure(
            "spf-lookups",
            G,
            format!("{domain}'s SPF record cannot be evaluated: {problem}"),
            "fix or remove that include, so every include names a domain with one SPF record",
        ),
        None if count > SPF_LOOKUP_LIMIT => Check::failure(
            "spf-lookups",
            G,
            format!(
                "{domain}'s SPF record needs {}{count} DNS lookups, over the limit of {SPF_LOOKUP_LIMIT}: receivers answer permerror",
                if count > 3 * SPF_LOOKUP_LIMIT { "at least " } else { "" }
            ),
            "remove includes you no longer send through, or replace a, mx and include terms with ip4:/ip6: ranges",
        ),
        None => Check::ok("spf-lookups", G, format!("{domain}'s SPF record needs {count} of at most {SPF_LOOKUP_LIMIT} DNS lookups")),
    });
}

/// The one SPF record at `domain`, or a failure named `id` when there is none or more than one.
async fn spf_record(id: &'static str, dns: &Dns, domain: &str, checks: &mut Vec<Check>) -> Option<String> {
    let fix = format!("publish one TXT record at {domain} such as \"v=spf1 include:<your relay's SPF domain> -all\"");
    let records: Vec<String> = match dns.txt(domain).await {
        Ok(records) => records.into_iter().filter(|r| is_spf(r)).collect(),
        Err(DnsError::NotFound) => Vec::new(),
        Err(DnsError::Failed(why)) => {
            checks.push(lookup_failed(id, &format!("{domain}'s TXT records"), &why));
            return None;
        }
    };
    match records.as_slice() {
        [] => {
            checks.push(Check::failure(
                id,
                G,
                format!("{domain} has no SPF record: receivers cannot tell your relay may send for it"),
                fix,
            ));
            None
        }
        [record] => {
            checks.push(Check::ok(id, G, format!("{domain} has one SPF record: {record}")));
            Some(record.clone())
        }
        many => {
            let message =
                format!("{domain} has {} SPF records; with more than one, receivers answer permerror", many.len());
            checks.push(Check::failure(id, G, message, "merge them into one v=spf1 record"));
            None
        }
    }
}

/// The DNS lookups SPF evaluation costs, as a receiver counts them: every `include:` and `redirect=` is
/// evaluated each time it appears (an include loop only ends at the limit), and the first include that cannot
/// be evaluated ends the count. Past three times the limit it stops counting: the answer is clear.
async fn spf_lookup_count(dns: &Dns, record: &str) -> (usize, Option<String>) {
    let first = spf_lookups(record);
    let mut count = first.count;
    let mut pending = first.follow;
    let mut records: HashMap<String, String> = HashMap::new();
    while let Some(next) = pending.pop() {
        if count > 3 * SPF_LOOKUP_LIMIT {
            break;
        }
        let included = match records.get(&next) {
            Some(record) => record.clone(),
            None => {
                let spf: Vec<String> = match dns.txt(&next).await {
                    Ok(found) => found.into_iter().filter(|r| is_spf(r)).collect(),
                    Err(DnsError::NotFound) => Vec::new(),
                    Err(DnsError::Failed(why)) => return (count, Some(format!("the lookup of {next} failed: {why}"))),
                };
                let [record] = spf.as_slice() else {
                    return (count, Some(format!("{next} has {} SPF records instead of one", spf.len())));
                };
                records.insert(next.clone(), record.clone());
                record.clone()
            }
        };
        let lookups = spf_lookups(&included);
        count += lookups.count;
        pending.extend(lookups.follow);
    }
    (count, None)
}

/// The DKIM key at `<selector>._domainkey.<domain>` is the public half of the configured key.
async fn dkim(settings: &Settings, dns: &Dns, checks: &mut Vec<Check>) -> Option<DkimSigner> {
    let signer = match crate::startup::dkim_signer(settings) {
        Ok(Some(signer)) => signer,
        Ok(None) => {
            let message =
                "DKIM signing is off (dkim.enabled = false): Gmail, Yahoo and Outlook.com require DKIM of bulk senders";
            let fix =
                "set dkim.enabled = true with dkim.domain, dkim.selector and a private key, then publish its record";
            checks.push(Check::failure("dkim", G, message, fix));
            return None;
        }
        Err(e) => {
            checks.push(Check::failure(
                "dkim",
                G,
                format!("{e:#}"),
                "fix the [dkim] settings (`tidings config check`)",
            ));
            return None;
        }
    };
    let name = signer.dns_name();
    let ours = dkim_public_key(&signer.dns_record()).unwrap_or_default();
    let publish = format!("publish this TXT record at {name}: \"{}\"", signer.dns_record());
    let published: Vec<String> = match dns.txt(&name).await {
        Ok(records) => records.iter().filter_map(|r| dkim_public_key(r)).collect(),
        Err(DnsError::NotFound) => Vec::new(),
        Err(DnsError::Failed(why)) => {
            checks.push(lookup_failed("dkim", &name, &why));
            return Some(signer);
        }
    };
    checks.push(if published.contains(&ours) {
        Check::ok("dkim", G, format!("{name} publishes the public half of the configured DKIM key"))
    } else if published.is_empty() {
        Check::failure(
            "dkim",
            G,
            format!("{name} has no DKIM key record: receivers cannot verify the signature"),
            publish,
        )
    } else if published.iter().all(String::is_empty) {
        Check::failure("dkim", G, format!("the DKIM key at {name} is revoked (empty p=)"), publish)
    } else {
        let message = format!("the DKIM key at {name} is another key than the configured one: every signature fails");
        Check::failure("dkim", G, message, publish)
    });
    Some(signer)
}

/// A DMARC record at `_dmarc.<domain>` (or, failing that, at a parent domain's), which parses.
async fn dmarc_check(dns: &Dns, domain: &str, checks: &mut Vec<Check>) {
    let fix =
        format!("publish a TXT record at _dmarc.{domain} such as \"v=DMARC1; p=none; rua=mailto:dmarc@{domain}\"");
    let mut name = domain;
    loop {
        let at = format!("_dmarc.{name}");
        let records: Vec<String> = match dns.txt(&at).await {
            Ok(records) => {
                records.into_iter().filter(|r| r.trim_start().to_ascii_lowercase().starts_with("v=dmarc")).collect()
            }
            Err(DnsError::NotFound) => Vec::new(),
            Err(DnsError::Failed(why)) => {
                checks.push(lookup_failed("dmarc", &at, &why));
                return;
            }
        };
        match records.as_slice() {
            [] => {}
            [record] => {
                checks.push(match dmarc(record) {
                    Ok(policy) => {
                        Check::ok("dmarc", G, format!("{at} publishes a DMARC policy (p={}): {record}", policy.policy))
                    }
                    Err(why) => {
                        Check::failure("dmarc", G, format!("the DMARC record at {at} does not parse: {why}"), fix)
                    }
                });
                return;
            }
            many => {
                let message = format!("{at} has {} DMARC records; receivers then apply none", many.len());
                checks.push(Check::failure("dmarc", G, message, "keep one v=DMARC1 record"));
                return;
            }
        }
        // A subdomain without a record falls under its parent's policy; stop at the registered name.
        match name.split_once('.') {
            Some((_, parent)) if parent.contains('.') => name = parent,
            _ => break,
        }
    }
    checks.push(Check::failure(
        "dmarc",
        G,
        format!("{domain} has no DMARC record (_dmarc.{domain}): Gmail and Yahoo refuse bulk mail without one"),
        fix,
    ));
}

/// The bounce domain has an MX, so that bounces and complaints can come back.
async fn bounce_mx(settings: &Settings, dns: &Dns, domain: &str, checks: &mut Vec<Check>) {
    let listen = settings.bounces.listen.trim();
    let target = if listen.is_empty() {
        "the mail server that receives bounces".to_owned()
    } else {
        format!("the host of the listener ({listen}) or a front MTA")
    };
    checks.push(match dns.mx(domain).await {
        Ok(hosts) => Check::ok("bounce-mx", G, format!("the bounce domain {domain} has MX {}", hosts.join(", "))),
        Err(DnsError::NotFound) => Check::failure(
            "bounce-mx",
            G,
            format!("the bounce domain {domain} has no MX record: bounces and complaints cannot come back"),
            format!("publish an MX record for {domain} pointing at {target}"),
        ),
        Err(DnsError::Failed(why)) => lookup_failed("bounce-mx", &format!("{domain}'s MX"), &why),
    });
}

/// A DNS lookup that failed for another reason than "no such record": the name server did not answer, or refused.
fn lookup_failed(id: &'static str, what: &str, why: &str) -> Check {
    Check::failure(
        id,
        G,
        format!("cannot look up {what}: {why}"),
        "check doctor.nameserver and the domain's DNS servers",
    )
}
