//! Masking personal data for display: `138****8000`.

/// Keeps the first `keep_start` and last `keep_end` characters and replaces the rest
/// with `*`, at least four of them. Values too short to mask become all `*`.
pub fn mask(value: &str, keep_start: usize, keep_end: usize) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() <= keep_start + keep_end {
        return "*".repeat(chars.len().max(4));
    }
    let hidden = (chars.len() - keep_start - keep_end).max(4);
    let mut out: String = chars[..keep_start].iter().collect();
    out.push_str(&"*".repeat(hidden));
    out.extend(&chars[chars.len() - keep_end..]);
    out
}

/// Masks a phone number as WeChat does: `13812348000` → `138****8000`.
pub fn mask_phone(phone: &str) -> String {
    mask(phone, 3, 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(mask_phone("13812348000"), "138****8000");
        assert_eq!(mask_phone("123"), "****");
        assert_eq!(mask("张三丰", 1, 0), "张****");
        assert_eq!(mask("", 1, 1), "****");
    }
}
