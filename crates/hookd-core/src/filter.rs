//! Which endpoints a message goes to.

use crate::model::Endpoint;

/// An endpoint receives a message when it is enabled, subscribed to the message's
/// event type (no filter means every type), and shares a channel with it (an
/// endpoint without channels receives everything; one with channels receives only
/// messages on at least one of them).
pub fn endpoint_matches(ep: &Endpoint, event_type: &str, channels: Option<&[String]>) -> bool {
    if ep.disabled {
        return false;
    }
    let type_ok = match ep.event_types.as_deref() {
        None | Some([]) => true,
        Some(types) => types.iter().any(|t| t == event_type),
    };
    let channel_ok = match ep.channels.as_deref() {
        None | Some([]) => true,
        Some(wanted) => channels
            .unwrap_or_default()
            .iter()
            .any(|c| wanted.contains(c)),
    };
    type_ok && channel_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(types: Option<&[&str]>, chans: Option<&[&str]>, disabled: bool) -> Endpoint {
        let now = chrono::Utc::now();
        Endpoint {
            id: "ep_x".into(),
            app_id: "app_x".into(),
            uid: None,
            url: "https://example.com".into(),
            description: String::new(),
            disabled,
            throttle_rate: None,
            event_types: types.map(|t| t.iter().map(|s| s.to_string()).collect()),
            channels: chans.map(|t| t.iter().map(|s| s.to_string()).collect()),
            metadata: Default::default(),
            headers: Default::default(),
            secret: String::new(),
            old_secrets: vec![],
            settings: serde_json::Value::Null,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn unfiltered_endpoint_receives_everything() {
        assert!(endpoint_matches(&ep(None, None, false), "a.b", None));
        assert!(endpoint_matches(
            &ep(Some(&[]), Some(&[]), false),
            "a.b",
            Some(&["c".into()])
        ));
    }

    #[test]
    fn disabled_endpoint_receives_nothing() {
        assert!(!endpoint_matches(&ep(None, None, true), "a.b", None));
    }

    #[test]
    fn event_type_filter_selects_types() {
        let e = ep(Some(&["user.created"]), None, false);
        assert!(endpoint_matches(&e, "user.created", None));
        assert!(!endpoint_matches(&e, "user.deleted", None));
    }

    #[test]
    fn channel_filter_needs_a_shared_channel() {
        let e = ep(None, Some(&["eu", "us"]), false);
        assert!(endpoint_matches(&e, "x", Some(&["us".into()])));
        assert!(!endpoint_matches(&e, "x", Some(&["asia".into()])));
        assert!(!endpoint_matches(&e, "x", None));
    }
}
