//! Provider webhooks: signed HTTP notifications of bounces, complaints and deliveries from hosted relays.

pub mod ses;
pub mod sns;
