//! Phone numbers users register: parsed and validated per country with the `phonenumber`
//! library (Google's libphonenumber metadata) and stored in E.164.

/// `+31612345678` from what a user typed, or None when it is not a valid number. Numbers
/// without a country code are read in the country of `default_calling_code` (e.g. "31").
pub fn normalise(input: &str, default_calling_code: Option<&str>) -> Option<String> {
    let input = input.trim();
    if input.is_empty() || input.len() > 40 {
        return None;
    }
    let region = default_calling_code
        .and_then(|cc| cc.trim_start_matches('+').parse::<u16>().ok())
        .and_then(|cc| phonenumber::metadata::DATABASE.by_code(&cc))
        .and_then(|regions| regions.first().map(|m| m.id().to_string()))
        .and_then(|id| id.parse::<phonenumber::country::Id>().ok());
    let number = phonenumber::parse(region, input).ok()?;
    if !phonenumber::is_valid(&number) {
        return None;
    }
    Some(number.format().mode(phonenumber::Mode::E164).to_string())
}

/// An office extension: digits only, at most 10.
pub fn extension(input: &str) -> Option<Option<String>> {
    let e = input.trim();
    if e.is_empty() {
        return Some(None);
    }
    (e.len() <= 10 && e.bytes().all(|b| b.is_ascii_digit())).then(|| Some(e.to_string()))
}
