//! The product's vocabulary as types: subscriber emails and names, list slugs, statuses, link tokens, and the
//! weekly cadence with its wall-clock rules.
//!
//! Everything here is built through `parse`/`TryFrom`, so the rest of the crate cannot hold an invalid value.
//! This module performs no I/O and depends on nothing else in the crate.

mod cadence;
mod digest;
mod duration;
mod issue_number;
mod links;
mod list;
mod return_path;
mod status;
mod subscriber_email;
mod subscriber_name;
mod token;

pub use cadence::{
    Cadence, EARLIEST_OFFSET_HOURS, SlotTime, WeeklySlot, check_time_zone, earliest_instant,
    resolve as resolve_local_time,
};
pub use digest::sha256_hex;
pub use duration::ForPeople;
pub use issue_number::{IssueNumber, IssueNumberError};
pub use links::{CONFIRM_PATH, IssueLinks, LinkBuilder, OPEN_PATH, RATE_PATH, UNSUBSCRIBE_PATH, VIEW_PATH};
pub use list::{ListSlug, ListSpec};
pub use return_path::{
    BounceAddress, BounceAddressError, MAX_BOUNCE_LOCAL_LEN, RETURN_PATH_DELIMITER, ReturnPathError, ReturnPathFor,
    read_trace, trace_value,
};
pub use status::{ConsentSource, DeliveryStatus, IssueStatus, SubscriptionStatus, SuppressionReason};
pub use subscriber_email::{EmailError, SubscriberEmail};
pub use subscriber_name::{NameError, SubscriberName};
pub use token::{KeySpecError, LinkClaims, LinkKeys, MIN_KEY_LEN, Purpose, TokenError};
