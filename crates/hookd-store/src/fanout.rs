//! Fan-out at message creation, the same on every backend: a message becomes
//! one pending delivery per endpoint of its app that it matches.

use std::borrow::Borrow;
use std::collections::HashMap;

use hookd_core::filter::endpoint_matches;
use hookd_core::model::{Delivery, Endpoint, Message, MessageStatus};
use hookd_core::{new_id, IdKind};

use crate::Accepted;

/// The deliveries of each message, in order: one per endpoint of its app
/// (`endpoints_of(app_id)`) that [`endpoint_matches`] selects, pending and due
/// at the message's first due time.
pub(crate) fn deliveries<'e, E: Borrow<Endpoint> + 'e>(
    msgs: &[&Message],
    endpoints_of: impl Fn(&str) -> &'e [E],
) -> Vec<Vec<Delivery>> {
    msgs.iter()
        .map(|msg| {
            endpoints_of(&msg.app_id)
                .iter()
                .map(Borrow::borrow)
                .filter(|ep| endpoint_matches(ep, &msg.event_type, msg.channels.as_deref()))
                .map(|ep| Delivery {
                    id: new_id(IdKind::Destination),
                    app_id: msg.app_id.clone(),
                    msg_id: msg.id.clone(),
                    endpoint_id: ep.id.clone(),
                    status: MessageStatus::Pending,
                    attempts: 0,
                    next_attempt: Some(msg.first_due()),
                    created_at: msg.created_at,
                    updated_at: msg.created_at,
                })
                .collect()
        })
        .collect()
}

/// What accepting each of `msgs` did, in order: the deliveries written with
/// those fanned out at once (`inline`, paired with `deliveries`), and for the
/// rest a pending fan-out to about `width(msg)` endpoints.
pub(crate) fn accepted(
    msgs: &[&Message],
    inline: &[&Message],
    deliveries: Vec<Vec<Delivery>>,
    width: impl Fn(&Message) -> usize,
) -> Vec<Accepted> {
    in_order(msgs, inline, deliveries, Accepted::FannedOut, |m| {
        Accepted::Pending {
            endpoints: width(m),
        }
    })
}

/// The deliveries of each of `msgs`, in order: those written for the messages
/// whose fan-out this call claimed (`claimed`, paired with `deliveries`), and
/// none for the rest.
pub(crate) fn claimed(
    msgs: &[&Message],
    claimed: &[&Message],
    deliveries: Vec<Vec<Delivery>>,
) -> Vec<Vec<Delivery>> {
    in_order(msgs, claimed, deliveries, |d| d, |_| Vec::new())
}

/// Each of `msgs`, in order, with the deliveries written for it (`done` pairs
/// the messages fanned out with their deliveries): `written` for those, and
/// `otherwise` for the rest.
fn in_order<T>(
    msgs: &[&Message],
    done: &[&Message],
    deliveries: Vec<Vec<Delivery>>,
    written: impl Fn(Vec<Delivery>) -> T,
    otherwise: impl Fn(&Message) -> T,
) -> Vec<T> {
    let mut by_msg: HashMap<&str, Vec<Delivery>> =
        done.iter().map(|m| m.id.as_str()).zip(deliveries).collect();
    msgs.iter()
        .map(|m| match by_msg.remove(m.id.as_str()) {
            Some(d) => written(d),
            None => otherwise(m),
        })
        .collect()
}
