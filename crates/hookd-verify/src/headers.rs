//! The one thing a verifier needs from an HTTP framework: look a header up by
//! name, ignoring case. Implemented for plain collections here; a framework's own
//! header map takes a three-line impl (see the crate docs).

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

/// Request headers, looked up case-insensitively (HTTP header names are).
pub trait Headers {
    /// The value of header `name`, whatever the case of either side.
    fn header(&self, name: &str) -> Option<&str>;
}

fn find_in_pairs<'a, K: AsRef<str> + 'a, V: AsRef<str> + 'a>(
    pairs: impl IntoIterator<Item = (&'a K, &'a V)>,
    name: &str,
) -> Option<&'a str> {
    pairs
        .into_iter()
        .find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_ref())
}

impl<K: AsRef<str>, V: AsRef<str>> Headers for [(K, V)] {
    fn header(&self, name: &str) -> Option<&str> {
        find_in_pairs(self.iter().map(|(k, v)| (k, v)), name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> Headers for [(K, V); N] {
    fn header(&self, name: &str) -> Option<&str> {
        self.as_slice().header(name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Headers for Vec<(K, V)> {
    fn header(&self, name: &str) -> Option<&str> {
        self.as_slice().header(name)
    }
}

impl<V: AsRef<str>, S: BuildHasher> Headers for HashMap<String, V, S> {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name)
            .map(AsRef::as_ref)
            .or_else(|| find_in_pairs(self, name))
    }
}

impl<V: AsRef<str>> Headers for BTreeMap<String, V> {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name)
            .map(AsRef::as_ref)
            .or_else(|| find_in_pairs(self, name))
    }
}

/// Looks `name` up or names it in the error.
pub(crate) fn require<'h, H: Headers + ?Sized>(
    headers: &'h H,
    name: &str,
) -> Result<&'h str, crate::VerifyError> {
    headers
        .header(name)
        .ok_or_else(|| crate::VerifyError::MissingHeader(name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_ignore_case_on_both_sides() {
        let pairs = [("Webhook-Id", "a"), ("SVIX-ID", "b")];
        assert_eq!(pairs.header("webhook-id"), Some("a"));
        assert_eq!(pairs.header("svix-Id"), Some("b"));
        assert_eq!(pairs.header("webhook-timestamp"), None);

        let map: HashMap<String, String> =
            [("Stripe-Signature".to_owned(), "t=1".to_owned())].into();
        assert_eq!(map.header("stripe-signature"), Some("t=1"));
        let map: BTreeMap<String, &str> = [("x-sig".to_owned(), "v")].into();
        assert_eq!(map.header("X-SIG"), Some("v"));
    }
}
