//! The keypad routing rule: what a key pressed at the IVR menu does.
//!
//! One rule, read from the configuration, for every path that routes keys:
//! the call session (so `serve` and the evaluation, which plays scripts
//! through the session) and synthetic calls. The operator key
//! (`policy.operator_digit`, `0` by default) transfers to the support queue;
//! a key of `[[ivr.menu]]` transfers to its entry's queue or says its answer;
//! any other key is not an option. Keys compare regardless of case (`a` is `A`).

use crate::policy::{PolicyConfig, Reason};
use crate::settings::{IvrConfig, MenuItem};

/// The keys of one configuration: the menu's and the operator's.
#[derive(Debug, Clone, Copy)]
pub struct Keypad<'a> {
    menu: &'a [MenuItem],
    operator_digit: &'a str,
    support_queue: &'a str,
}

/// What a key does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRoute<'a> {
    /// A transfer: the operator key, or a menu entry with a queue.
    Transfer {
        /// [`Reason::Operator`] or [`Reason::MenuChoice`].
        reason: Reason,
        /// The queue.
        queue: &'a str,
        /// What the caller chose: `operator`, or the entry's label.
        choice: &'a str,
    },
    /// A menu entry with a self-service answer.
    Answer {
        /// The entry's label.
        choice: &'a str,
        /// What the IVR says.
        say: &'a str,
    },
    /// No such option.
    NotAnOption,
}

impl<'a> KeyRoute<'a> {
    /// What the caller chose (`operator` or a menu entry's label), as the
    /// conversation records it; `None` for a key that is not an option.
    pub fn choice(&self) -> Option<&'a str> {
        match *self {
            KeyRoute::Transfer { choice, .. } | KeyRoute::Answer { choice, .. } => Some(choice),
            KeyRoute::NotAnOption => None,
        }
    }
}

/// The name the operator key's choice is recorded under.
pub const OPERATOR: &str = "operator";

impl<'a> Keypad<'a> {
    /// The keypad of a configuration: its menu and its operator key.
    pub fn new(ivr: &'a IvrConfig, policy: &'a PolicyConfig) -> Self {
        Self { menu: &ivr.menu, operator_digit: &policy.operator_digit, support_queue: &policy.support_queue }
    }

    /// What the keys a menu collected do. The menu collects one key; of
    /// several, the first counts.
    pub fn route(&self, digits: &str) -> KeyRoute<'a> {
        let Some(key) = digits.trim().chars().next() else { return KeyRoute::NotAnOption };
        if is_key(self.operator_digit, key) {
            return KeyRoute::Transfer { reason: Reason::Operator, queue: self.support_queue, choice: OPERATOR };
        }
        let Some(item) = self.menu.iter().find(|m| is_key(&m.digit, key)) else { return KeyRoute::NotAnOption };
        match (&item.queue, &item.say) {
            (Some(queue), _) => KeyRoute::Transfer { reason: Reason::MenuChoice, queue, choice: &item.label },
            (None, Some(say)) => KeyRoute::Answer { choice: &item.label, say },
            // Refused by the configuration's checks: an entry must do one or the other.
            (None, None) => KeyRoute::NotAnOption,
        }
    }

    /// The keys a menu listens for (a gather's `valid_digits`): the menu's, then the operator's.
    pub fn valid_digits(&self) -> String {
        self.menu.iter().map(|m| m.digit.as_str()).chain([self.operator_digit]).collect()
    }

    /// The keys that transfer, each with its route: the operator key first,
    /// then the menu's queues in menu order.
    pub fn transfers(&self) -> Vec<(&'a str, KeyRoute<'a>)> {
        std::iter::once(self.operator_digit)
            .chain(self.menu.iter().filter(|m| m.queue.is_some()).map(|m| m.digit.as_str()))
            .map(|key| (key, self.route(key)))
            .filter(|(_, route)| matches!(route, KeyRoute::Transfer { .. }))
            .collect()
    }
}

/// True when `key` is the one key `digit` names, in either case.
fn is_key(digit: &str, key: char) -> bool {
    let mut chars = digit.chars();
    chars.next().is_some_and(|d| d.eq_ignore_ascii_case(&key)) && chars.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_menu_routes_operator_sales_and_answers() {
        let (ivr, policy) = (IvrConfig::default(), PolicyConfig::default());
        let keypad = Keypad::new(&ivr, &policy);
        assert_eq!(
            keypad.route("0"),
            KeyRoute::Transfer { reason: Reason::Operator, queue: "support", choice: "operator" }
        );
        assert_eq!(
            keypad.route("3"),
            KeyRoute::Transfer { reason: Reason::MenuChoice, queue: "sales", choice: "sales" }
        );
        assert!(matches!(keypad.route("1"), KeyRoute::Answer { choice: "billing", .. }));
        assert_eq!(keypad.route("1").choice(), Some("billing"));
        for other in ["7", "*", "", " ", "D"] {
            assert_eq!(keypad.route(other), KeyRoute::NotAnOption, "{other:?}");
            assert_eq!(keypad.route(other).choice(), None);
        }
        assert_eq!(keypad.route("30012#"), keypad.route("3"), "the first key counts");
        assert_eq!(keypad.valid_digits(), "1230");
        let transfers: Vec<_> = keypad.transfers().into_iter().map(|(k, r)| (k, r.choice())).collect();
        assert_eq!(transfers, [("0", Some("operator")), ("3", Some("sales"))]);
    }

    #[test]
    fn keys_compare_regardless_of_case() {
        let mut ivr = IvrConfig::default();
        ivr.menu[0].digit = "#".into();
        let policy = PolicyConfig { operator_digit: "A".into(), ..PolicyConfig::default() };
        let keypad = Keypad::new(&ivr, &policy);
        assert_eq!(keypad.route("a"), keypad.route("A"));
        assert!(matches!(keypad.route("a"), KeyRoute::Transfer { reason: Reason::Operator, .. }));
        assert!(matches!(keypad.route("#"), KeyRoute::Answer { choice: "billing", .. }));
        assert_eq!(keypad.route("0"), KeyRoute::NotAnOption);
        assert_eq!(keypad.valid_digits(), "#23A");
    }

    #[test]
    fn menu_queues_route_to_their_own_queue() {
        let mut ivr = IvrConfig::default();
        ivr.menu[1].say = None;
        ivr.menu[1].queue = Some("tech".into());
        let policy = PolicyConfig { support_queue: "care".into(), ..PolicyConfig::default() };
        let keypad = Keypad::new(&ivr, &policy);
        assert_eq!(
            keypad.route("2"),
            KeyRoute::Transfer { reason: Reason::MenuChoice, queue: "tech", choice: "technical support" }
        );
        let queues: Vec<_> = keypad
            .transfers()
            .into_iter()
            .filter_map(|(k, r)| match r {
                KeyRoute::Transfer { queue, .. } => Some((k, queue)),
                _ => None,
            })
            .collect();
        assert_eq!(queues, [("0", "care"), ("2", "tech"), ("3", "sales")]);
    }
}
