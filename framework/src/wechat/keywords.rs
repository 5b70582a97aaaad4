//! Subscribe-message keywords: which a template has, and WeChat's value rules.
//!
//! Shared by the sandbox (which refuses bad values with 47003, as WeChat does) and
//! by senders that check values before calling WeChat.

/// WeChat's rule for a keyword kind, e.g. `thing` (≤ 20 characters), `phrase`
/// (≤ 5 characters), `number` (digits); unknown kinds are held to 20 characters.
pub fn value_ok(rule: &str, value: &str) -> bool {
    let chars = value.chars().count();
    let all = |f: fn(char) -> bool| value.chars().all(f);
    match rule {
        "thing" => chars <= 20,
        "number" => chars <= 32 && all(|c| c.is_ascii_digit() || c == '.'),
        "letter" => chars <= 32 && all(|c| c.is_ascii_alphabetic()),
        "symbol" => chars <= 5 && all(|c| !c.is_alphanumeric()),
        "character_string" => chars <= 32 && all(|c| c.is_ascii_graphic()),
        "phone_number" => chars <= 17 && all(|c| c.is_ascii_digit() || "+-() ".contains(c)),
        "car_number" => chars <= 8,
        "name" => chars <= 10,
        "phrase" => chars <= 5,
        "amount" => all(|c| c.is_ascii_digit() || ".元¥".contains(c)),
        "time" | "date" => chars > 0 && chars <= 32,
        _ => chars <= 20,
    }
}

/// What the rule allows, for error messages.
pub fn rule_description(rule: &str) -> &'static str {
    match rule {
        "thing" => "at most 20 characters",
        "number" => "digits and '.', at most 32",
        "letter" => "ASCII letters, at most 32",
        "symbol" => "symbols, at most 5",
        "character_string" => "visible ASCII, at most 32",
        "phone_number" => "digits, spaces and +-(), at most 17",
        "car_number" => "at most 8 characters",
        "name" => "at most 10 characters",
        "phrase" => "at most 5 characters",
        "amount" => "digits, '.', 元 or ¥",
        "time" | "date" => "1 to 32 characters",
        _ => "at most 20 characters",
    }
}

/// The keywords of a template's `content` (`商品名称:{{thing1.DATA}}\n...`) as
/// `(key, rule)`: `("thing1", "thing")`.
pub fn template_keywords(content: &str) -> Vec<(String, String)> {
    content
        .split("{{")
        .skip(1)
        .filter_map(|part| part.split_once(".DATA}}"))
        .map(|(key, _)| {
            let rule = key.trim_end_matches(|c: char| c.is_ascii_digit());
            (key.to_owned(), rule.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_come_from_the_template_layout() {
        let content = "商品名称:{{thing1.DATA}}\n快递单号:{{character_string2.DATA}}\n";
        assert_eq!(
            template_keywords(content),
            [
                ("thing1".to_owned(), "thing".to_owned()),
                (
                    "character_string2".to_owned(),
                    "character_string".to_owned()
                )
            ]
        );
    }

    #[test]
    fn rules_follow_wechat() {
        assert!(value_ok("thing", &"字".repeat(20)));
        assert!(!value_ok("thing", &"字".repeat(21)));
        assert!(value_ok("phrase", "已支付"));
        assert!(!value_ok("phrase", "已经支付成功"));
        assert!(value_ok("number", "12.5"));
        assert!(!value_ok("number", "12a"));
        assert!(value_ok("amount", "99.00元"));
        assert!(!value_ok("time", ""));
    }
}
