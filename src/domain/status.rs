//! Statuses stored as text: each enum maps to exactly the strings the migrations' CHECK constraints allow.

use std::fmt;

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text stored in the database and shown to users.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the stored text; the error lists the accepted values.
            pub fn parse(text: &str) -> Result<Self, String> {
                match text {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(
                        "`{other}` is not one of: {}",
                        [$($text),+].join(", ")
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                Self::parse(s)
            }
        }
    };
}

text_enum! {
    /// Where a subscriber stands with one list.
    SubscriptionStatus {
        /// Awaiting the double opt-in confirmation.
        Pending => "pending",
        /// Receives issues.
        Active => "active",
        /// Left, by link or by an admin.
        Unsubscribed => "unsubscribed",
        /// The address hard-bounced.
        Bounced => "bounced",
        /// The subscriber marked a message as spam.
        Complained => "complained",
    }
}

text_enum! {
    /// How consent was collected: part of the consent evidence kept with each subscription.
    ConsentSource {
        Import => "import",
        Form => "form",
        Cli => "cli",
    }
}

text_enum! {
    /// Why an address is on the suppression list and must never be mailed again.
    SuppressionReason {
        Bounced => "bounced",
        Complained => "complained",
        Erased => "erased",
        Manual => "manual",
    }
}

text_enum! {
    /// Where an issue stands. `draft -> scheduled -> sending -> sent`, with `paused` (by an admin, a policy
    /// rejection, or a late start) and `cancelled` on the way; `queued` waits for its list's next weekly slot.
    IssueStatus {
        Draft => "draft",
        Queued => "queued",
        Scheduled => "scheduled",
        Sending => "sending",
        Paused => "paused",
        Sent => "sent",
        Cancelled => "cancelled",
    }
}

text_enum! {
    /// Where one delivery (one issue to one subscriber) stands; see the migration for the transitions.
    DeliveryStatus {
        /// Created with the outbox, waiting for its turn (`not_before`).
        Queued => "queued",
        /// Claimed by a daemon under a lease.
        Sending => "sending",
        /// The relay accepted it.
        Sent => "sent",
        /// A temporary failure; tried again at `not_before`.
        RetryWait => "retry_wait",
        /// Given up: permanent rejection, or out of attempts or time.
        Failed => "failed",
        /// The address does not exist: suppressed, never tried again.
        Bounced => "bounced",
        /// Not sent: the subscriber left or the address was suppressed before it went out.
        Suppressed => "suppressed",
        /// The outcome of an attempt is unknown (the connection dropped after the message was handed over, or
        /// a daemon died holding it); it is sent again, so the subscriber may receive it twice.
        Ambiguous => "ambiguous",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips_through_its_text() {
        for status in SubscriptionStatus::ALL {
            assert_eq!(SubscriptionStatus::parse(status.as_str()), Ok(*status));
        }
        let err = SubscriptionStatus::parse("gone").unwrap_err();
        assert!(err.contains("pending, active, unsubscribed, bounced, complained"), "{err}");
    }
}
