//! Identity-based policy evaluation, as IAM does it for the statements our template writes: an explicit `Deny`
//! wins, otherwise some `Allow` must match both the action and the resource, otherwise the call is denied
//! (implicitly). Actions match case-insensitively, resources case-sensitively; both take IAM's `*` and `?`
//! wildcards. Conditions, `NotAction` and `NotResource` are refused when the policy file is read (the template uses
//! none), so nothing is silently allowed that IAM would have weighed.

use serde::Deserialize;

/// One statement, with its intrinsic functions already resolved (infra/local/policies.py writes them).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    #[serde(default)]
    pub sid: Option<String>,
    pub effect: Effect,
    pub actions: Vec<String>,
    pub resources: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Effect {
    Allow,
    Deny,
}

/// A function's execution role: who it is (for AWS's error message) and what it may do.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Principal {
    /// The function's binary, as the local stack names it.
    pub function: String,
    /// `arn:aws:sts::<account>:assumed-role/<role>/<function>`, as AWS names the caller in a denial.
    pub arn: String,
    pub statements: Vec<Statement>,
}

/// What IAM decided, and for a denial whether a statement said so or nothing allowed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    ExplicitDeny,
    ImplicitDeny,
}

impl Principal {
    pub fn decide(&self, action: &str, resource: &str) -> Decision {
        let action = action.to_ascii_lowercase();
        let matches = |s: &&Statement| {
            s.actions.iter().any(|a| glob(&a.to_ascii_lowercase(), &action))
                && s.resources.iter().any(|r| glob(r, resource))
        };
        if self
            .statements
            .iter()
            .filter(|s| s.effect == Effect::Deny)
            .any(|s| matches(&s))
        {
            return Decision::ExplicitDeny;
        }
        if self
            .statements
            .iter()
            .filter(|s| s.effect == Effect::Allow)
            .any(|s| matches(&s))
        {
            return Decision::Allowed;
        }
        Decision::ImplicitDeny
    }
}

/// IAM's wildcard match: `*` is any run of characters (none included), `?` any one character.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and how much of the text it has eaten so far: classic linear backtracking.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((star_p, star_t)) = star {
            pi = star_p + 1;
            ti = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(statements: Vec<Statement>) -> Principal {
        Principal {
            function: "get-tour".into(),
            arn: "arn:aws:sts::123456789012:assumed-role/GetTourFunctionRole/get-tour".into(),
            statements,
        }
    }

    fn allow(actions: &[&str], resources: &[&str]) -> Statement {
        Statement {
            sid: None,
            effect: Effect::Allow,
            actions: actions.iter().map(|s| s.to_string()).collect(),
            resources: resources.iter().map(|s| s.to_string()).collect(),
        }
    }

    const TABLE: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/tours";

    #[test]
    fn wildcards_match_as_iam_matches_them() {
        assert!(glob("sqs:SendMessage*", "sqs:SendMessage"));
        assert!(glob("sqs:SendMessage*", "sqs:SendMessageBatch"));
        assert!(!glob("sqs:SendMessage*", "sqs:ReceiveMessage"));
        assert!(glob(
            "arn:*:secret:prefix-*",
            "arn:aws:secretsmanager:us-east-1:1:secret:prefix-401-AbCdEf"
        ));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "ac"));
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "axxbyy"));
        assert!(
            !glob(TABLE, &format!("{TABLE}/index/gsi1")),
            "a table's ARN does not cover its indexes"
        );
    }

    #[test]
    fn an_action_not_granted_is_denied_and_one_granted_is_allowed() {
        let p = principal(vec![allow(&["dynamodb:GetItem"], &[TABLE])]);
        assert_eq!(p.decide("dynamodb:GetItem", TABLE), Decision::Allowed);
        assert_eq!(p.decide("dynamodb:BatchGetItem", TABLE), Decision::ImplicitDeny);
        assert_eq!(
            p.decide("dynamodb:GetItem", &format!("{TABLE}/index/gsi1")),
            Decision::ImplicitDeny
        );
        assert_eq!(
            p.decide(
                "dynamodb:GetItem",
                "arn:aws:dynamodb:us-east-1:123456789012:table/other"
            ),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn actions_compare_without_case_and_resources_with_it() {
        let p = principal(vec![allow(&["DynamoDB:getitem"], &[TABLE])]);
        assert_eq!(p.decide("dynamodb:GetItem", TABLE), Decision::Allowed);
        assert_eq!(
            p.decide("dynamodb:GetItem", &TABLE.to_uppercase()),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn an_explicit_deny_wins_over_any_allow() {
        let mut deny = allow(&["dynamodb:*"], &["*"]);
        deny.effect = Effect::Deny;
        let p = principal(vec![allow(&["dynamodb:GetItem"], &[TABLE]), deny]);
        assert_eq!(p.decide("dynamodb:GetItem", TABLE), Decision::ExplicitDeny);
    }
}
