//! The SES notification JSON as AWS documents it (notifications and event publishing share these objects), and
//! the few parts of each event type that classification and matching need. Unknown fields are ignored.

use serde::Deserialize;

use super::SesError;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Notification {
    pub(super) notification_type: Option<String>,
    pub(super) event_type: Option<String>,
    pub(super) mail: Option<Mail>,
    bounce: Option<Bounce>,
    complaint: Option<Complaint>,
    delivery: Option<Delivery>,
    delivery_delay: Option<DeliveryDelay>,
    reject: Option<Reject>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Mail {
    #[serde(default)]
    pub(super) message_id: String,
    #[serde(default)]
    destination: Vec<String>,
    /// Present only when the configuration includes the original headers.
    #[serde(default)]
    pub(super) headers: Vec<Header>,
    #[serde(default)]
    pub(super) common_headers: CommonHeaders,
}

#[derive(Deserialize)]
pub(super) struct Header {
    pub(super) name: String,
    pub(super) value: String,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CommonHeaders {
    pub(super) message_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bounce {
    bounce_type: String,
    #[serde(default)]
    bounce_sub_type: String,
    #[serde(default)]
    bounced_recipients: Vec<Recipient>,
    feedback_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Complaint {
    #[serde(default)]
    complained_recipients: Vec<Recipient>,
    complaint_feedback_type: Option<String>,
    complaint_sub_type: Option<String>,
    feedback_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Delivery {
    #[serde(default)]
    recipients: Vec<String>,
    #[serde(default)]
    smtp_response: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeliveryDelay {
    #[serde(default)]
    delay_type: String,
    #[serde(default)]
    delayed_recipients: Vec<Recipient>,
}

#[derive(Deserialize)]
struct Reject {
    #[serde(default)]
    reason: String,
}

#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Recipient {
    #[serde(rename = "emailAddress")]
    pub(super) address: String,
    pub(super) status: Option<String>,
    #[serde(rename = "diagnosticCode")]
    pub(super) diagnostic: Option<String>,
}

/// What one event says, in the table's terms.
pub(super) struct Parts {
    /// Bounce type, complaint feedback type (lowercased) or delay type.
    pub(super) class: String,
    pub(super) subtype: String,
    pub(super) feedback_id: Option<String>,
    pub(super) feedback_type: Option<String>,
    pub(super) recipients: Vec<Recipient>,
}

impl Parts {
    /// The parts of an event that names no subtype and no feedback: its recipients, and its class if it has one.
    fn of(class: &str, recipients: Vec<Recipient>) -> Self {
        Parts { class: class.to_owned(), subtype: String::new(), feedback_id: None, feedback_type: None, recipients }
    }
}

impl Notification {
    /// The parts of event type `event`; its object must be there.
    pub(super) fn parts(&self, event: &str) -> Result<Parts, SesError> {
        let missing = |name: &'static str, object: &'static str| SesError::MissingPart(name, object);
        let plain = |address: &String, diagnostic: &str| Recipient {
            address: address.clone(),
            status: None,
            diagnostic: Some(diagnostic.to_owned()).filter(|d| !d.is_empty()),
        };
        Ok(match event {
            "Bounce" => {
                let b = self.bounce.as_ref().ok_or(missing("Bounce", "bounce"))?;
                Parts {
                    class: b.bounce_type.clone(),
                    subtype: b.bounce_sub_type.clone(),
                    feedback_id: b.feedback_id.clone(),
                    feedback_type: None,
                    recipients: b.bounced_recipients.clone(),
                }
            }
            "Complaint" => {
                let c = self.complaint.as_ref().ok_or(missing("Complaint", "complaint"))?;
                let feedback_type = c.complaint_feedback_type.as_deref().map(|t| t.trim().to_ascii_lowercase());
                Parts {
                    class: feedback_type.clone().unwrap_or_default(),
                    subtype: c.complaint_sub_type.clone().unwrap_or_default(),
                    feedback_id: c.feedback_id.clone(),
                    feedback_type,
                    recipients: c.complained_recipients.clone(),
                }
            }
            "Delivery" => {
                let d = self.delivery.as_ref().ok_or(missing("Delivery", "delivery"))?;
                Parts::of("", d.recipients.iter().map(|a| plain(a, &d.smtp_response)).collect())
            }
            "DeliveryDelay" => {
                let d = self.delivery_delay.as_ref().ok_or(missing("DeliveryDelay", "deliveryDelay"))?;
                Parts::of(&d.delay_type, d.delayed_recipients.clone())
            }
            "Reject" => {
                let reason = self.reject.as_ref().map(|r| r.reason.as_str()).ok_or(missing("Reject", "reject"))?;
                let destination = self.mail.as_ref().map_or(&[][..], |m| m.destination.as_slice());
                Parts::of("", destination.iter().map(|a| plain(a, reason)).collect())
            }
            other => return Err(SesError::Malformed(format!("no reader for SES event type `{other}`"))),
        })
    }
}
