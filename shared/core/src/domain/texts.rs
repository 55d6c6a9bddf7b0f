//! Text messages' rules that need no I/O: when a text may go (quiet hours), what a prospect's reply asks for, what
//! each text says, and how many parts it costs.
//!
//! Quiet hours: a text waits out 9 pm to 8 am in the prospect's local time (the property's zone stands in for it),
//! unless waiting would make it useless: a text about a tour that starts before quiet hours end, plus
//! [`USEFUL_LEAD`], goes when it is due (the prospect booked a tour at that hour).
//!
//! Replies: a reply that is one keyword (any case, spaces and trailing punctuation ignored) is that keyword: `C`,
//! `Y`, `YES`, `CONFIRM` confirm attendance; `R`, `RESCHEDULE` ask for a new time; `CANCEL` cancels the tour and,
//! since the FCC's April 2025 rule makes it a revocation, revokes consent too; `STOP`, `QUIT`, `END`, `REVOKE`,
//! `OPT OUT`, `OPTOUT`, `STOPALL`, `UNSUBSCRIBE` revoke consent; `HELP` and `INFO` ask who we are; `START` and
//! `UNSTOP` restore consent. Consent may be revoked "by any reasonable means", so a longer reply that says `STOP`,
//! `UNSUBSCRIBE`, `REVOKE` or `OPT OUT` among its words revokes too (and changes nothing else). Anything else is for
//! a person or the chatbot to answer.

use super::slots::resolve_local;
use chrono::{DateTime, Duration, NaiveTime, Utc};
use chrono_tz::Tz;

/// Quiet hours start at 9 pm ...
pub const QUIET_FROM: NaiveTime = NaiveTime::from_hms_opt(21, 0, 0).expect("9 pm");
/// ... and end at 8 am, local time.
pub const QUIET_UNTIL: NaiveTime = NaiveTime::from_hms_opt(8, 0, 0).expect("8 am");
/// A text waited out of quiet hours must still reach the prospect this long before the tour, or it goes when due.
pub const USEFUL_LEAD: Duration = Duration::minutes(30);

/// When a text due at `due` about a tour starting at `tour_start` may go.
pub fn deliver_at(zone: Tz, due: DateTime<Utc>, tour_start: DateTime<Utc>) -> DateTime<Utc> {
    let local = due.with_timezone(&zone).naive_local();
    let quiet_ends = if local.time() >= QUIET_FROM {
        local.date().succ_opt().map(|d| d.and_time(QUIET_UNTIL))
    } else if local.time() < QUIET_UNTIL {
        Some(local.date().and_time(QUIET_UNTIL))
    } else {
        return due;
    };
    // 8 am exists on every day in every zone we serve; if a zone ever skipped it, the first minute after.
    let Some(wait_until) =
        quiet_ends.and_then(|end| (0..=120).find_map(|m| resolve_local(zone, end + Duration::minutes(m))))
    else {
        return due;
    };
    if wait_until + USEFUL_LEAD > tour_start {
        due
    } else {
        wait_until
    }
}

/// What a prospect's reply asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// They will come (`C`, `Y`, `YES`, `CONFIRM`).
    Confirm,
    /// They want another time (`R`, `RESCHEDULE`): a fresh self-service link.
    Reschedule,
    /// Cancel the tour, and (a revocation word too) stop texting.
    Cancel,
    /// Stop texting, by `word`; nothing else changes.
    Revoke { word: String },
    /// Who is texting and how to stop.
    Help,
    /// Texts again.
    Start,
    /// Words for a person or the chatbot.
    Other,
}

const CONFIRM: [&str; 4] = ["C", "Y", "YES", "CONFIRM"];
const RESCHEDULE: [&str; 2] = ["R", "RESCHEDULE"];
const REVOKE: [&str; 8] = [
    "STOP",
    "QUIT",
    "END",
    "REVOKE",
    "OPT OUT",
    "OPTOUT",
    "STOPALL",
    "UNSUBSCRIBE",
];
/// Revocation words that mean it inside a longer reply too ("please stop texting me"); `END` and `QUIT` are too
/// common in ordinary sentences to be read so.
const REVOKE_IN_WORDS: [&str; 5] = ["STOP", "STOPALL", "UNSUBSCRIBE", "REVOKE", "OPTOUT"];
const HELP: [&str; 2] = ["HELP", "INFO"];
const START: [&str; 2] = ["START", "UNSTOP"];

impl Reply {
    pub fn parse(body: &str) -> Self {
        let words: Vec<String> = body
            .split(|c: char| c.is_whitespace() || matches!(c, '.' | ',' | '!' | '?' | ';' | ':' | '"' | '\''))
            .filter(|w| !w.is_empty())
            .map(str::to_uppercase)
            .collect();
        let whole = words.join(" ");
        let is = |list: &[&str]| list.contains(&whole.as_str());
        if is(&CONFIRM) {
            Self::Confirm
        } else if is(&RESCHEDULE) {
            Self::Reschedule
        } else if whole == "CANCEL" {
            Self::Cancel
        } else if is(&REVOKE) {
            Self::Revoke { word: whole }
        } else if is(&HELP) {
            Self::Help
        } else if is(&START) {
            Self::Start
        } else if let Some(word) = revocation_among(&words) {
            Self::Revoke { word }
        } else {
            Self::Other
        }
    }

    /// Whether the reply revokes consent to texts.
    pub fn revokes(&self) -> bool {
        matches!(self, Self::Cancel | Self::Revoke { .. })
    }
}

fn revocation_among(words: &[String]) -> Option<String> {
    if let Some(word) = words.iter().find(|w| REVOKE_IN_WORDS.contains(&w.as_str())) {
        return Some(word.clone());
    }
    words
        .windows(2)
        .find(|pair| pair[0] == "OPT" && pair[1] == "OUT")
        .map(|_| "OPT OUT".to_owned())
}

/// What a text says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// The booking, with the confirmation ask.
    Confirmation,
    /// The first reminder (24 hours before, by default), with the confirmation ask.
    Reminder,
    /// The last reminder (2 hours before, by default), with the confirmation ask.
    LastReminder,
    /// The tour moved.
    Moved,
    /// The tour is off (staff or the chatbot cancelled it).
    Cancelled,
    /// A booking ResMan refused (staff took the time while ResMan was out of reach).
    NotBooked,
    /// The one text after a `CANCEL` reply: the tour is off, and so are texts.
    CancelledAndStopped,
    /// The one text after a revocation: no more texts.
    Stopped,
    /// The answer to `HELP`.
    Help,
    /// The answer to `C`: the prospect's attendance is noted.
    Attending,
    /// The answer to `R`: a fresh link to pick another time.
    NewTime,
    /// The answer to `START`: texts again.
    Restarted,
}

/// What a text is about: the property's name (its voice), the office's phone, the tour's start in the property's
/// zone, and the prospect's self-service link.
pub struct TextAbout<'a> {
    pub property: &'a str,
    pub office_phone: Option<&'a str>,
    pub start: DateTime<Utc>,
    pub zone: Tz,
    pub link: Option<&'a str>,
}

/// The words of a text: short (one part where the link allows, two at most with one), signed with the property's
/// name, in GSM-7 characters where the property's name allows.
pub fn wording(kind: TextKind, about: &TextAbout<'_>) -> String {
    let local = about.start.with_timezone(&about.zone);
    let when = local.format("%a %b %-d, %-I:%M %p").to_string();
    let hour = local.format("%-I:%M %p").to_string();
    const ASK: &str = "Reply C to confirm, R to reschedule.";
    const BACK: &str = "Reply START to get texts again.";
    let body = match kind {
        TextKind::Confirmation => format!("your tour is booked for {when}. {ASK}"),
        TextKind::Reminder => format!("reminder: your tour is {when}. {ASK}"),
        TextKind::LastReminder => format!("see you at {hour} today for your tour. {ASK}"),
        TextKind::Moved => format!("your tour is now {when}."),
        TextKind::Cancelled => format!("your tour on {when} is cancelled. To book again:"),
        TextKind::NotBooked => format!("sorry, we could not book your tour on {when} after all. Pick another time:"),
        TextKind::CancelledAndStopped => {
            format!("your tour on {when} is cancelled and we will not text you again. {BACK}")
        }
        TextKind::Stopped => format!("you will get no more texts from us. {BACK}"),
        TextKind::Attending => format!("thanks, see you {when}. Reply R to reschedule."),
        TextKind::NewTime => "pick another time for your tour here:".to_owned(),
        TextKind::Restarted => "you will get texts about your tour again. Reply STOP to stop.".to_owned(),
        TextKind::Help => match about.office_phone {
            Some(phone) => format!("tour texts. Questions? Call {phone}. Reply STOP to stop."),
            None => "tour texts. Reply STOP to stop.".to_owned(),
        },
    };
    let linked = matches!(
        kind,
        TextKind::Confirmation
            | TextKind::Reminder
            | TextKind::LastReminder
            | TextKind::Moved
            | TextKind::Cancelled
            | TextKind::NotBooked
            | TextKind::NewTime
    );
    match about.link.filter(|_| linked) {
        Some(link) => format!("{}: {body} {link}", about.property),
        None => format!("{}: {body}", about.property),
    }
}

/// The characters of GSM 03.38's default alphabet, and those of its extension table (which take two septets).
const GSM7: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM7_EXTENDED: &str = "^{}\\[~]|€\u{c}";

/// How many parts (segments) a text costs: GSM-7 fits 160 septets in one part and 153 a part beyond; anything
/// outside it is sent as UCS-2, 70 UTF-16 units in one part and 67 a part beyond.
pub fn segments(text: &str) -> u32 {
    let septets: Option<usize> = text
        .chars()
        .map(|c| {
            if GSM7.contains(c) {
                Some(1)
            } else if GSM7_EXTENDED.contains(c) {
                Some(2)
            } else {
                None
            }
        })
        .sum();
    let (length, single, part) = match septets {
        Some(septets) => (septets, 160, 153),
        None => (text.encode_utf16().count(), 70, 67),
    };
    let parts = if length <= single { 1 } else { length.div_ceil(part) };
    u32::try_from(parts).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use chrono_tz::America::{Chicago, Phoenix};

    fn chicago(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Chicago
            .with_ymd_and_hms(y, m, d, h, min, 0)
            .earliest()
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_text_due_in_quiet_hours_waits_until_8_am_local() {
        let tour = chicago(2026, 12, 3, 15, 0);
        // Due 10:30 pm: next morning at 8.
        assert_eq!(
            deliver_at(Chicago, chicago(2026, 12, 1, 22, 30), tour),
            chicago(2026, 12, 2, 8, 0)
        );
        // Due 6 am: that morning at 8.
        assert_eq!(
            deliver_at(Chicago, chicago(2026, 12, 2, 6, 0), tour),
            chicago(2026, 12, 2, 8, 0)
        );
        // Outside quiet hours: when due. 9 pm itself is quiet; 8 am is not.
        assert_eq!(
            deliver_at(Chicago, chicago(2026, 12, 2, 20, 59), tour),
            chicago(2026, 12, 2, 20, 59)
        );
        assert_eq!(
            deliver_at(Chicago, chicago(2026, 12, 2, 21, 0), tour),
            chicago(2026, 12, 3, 8, 0)
        );
        assert_eq!(
            deliver_at(Chicago, chicago(2026, 12, 2, 8, 0), tour),
            chicago(2026, 12, 2, 8, 0)
        );
    }

    #[test]
    fn quiet_hours_follow_the_local_clock_across_daylight_saving_changes() {
        // 8 March 2026: Chicago springs forward at 2 am (the night is an hour shorter). Due at 1:30 am CST (07:30
        // UTC): 8 am CDT is 13:00 UTC, not 14:00.
        let due = Utc.with_ymd_and_hms(2026, 3, 8, 7, 30, 0).unwrap();
        let tour = chicago(2026, 3, 9, 10, 0);
        assert_eq!(
            deliver_at(Chicago, due, tour),
            Utc.with_ymd_and_hms(2026, 3, 8, 13, 0, 0).unwrap()
        );
        // 1 November 2026: it falls back at 2 am (1 am happens twice). Due at the second 1:30 am (CST, 07:30 UTC):
        // 8 am CST is 14:00 UTC.
        let due = Utc.with_ymd_and_hms(2026, 11, 1, 7, 30, 0).unwrap();
        let tour = chicago(2026, 11, 2, 10, 0);
        assert_eq!(
            deliver_at(Chicago, due, tour),
            Utc.with_ymd_and_hms(2026, 11, 1, 14, 0, 0).unwrap()
        );
        // Due at 9:30 pm CDT on 31 October (02:30 UTC on 1 November): 8 am CST the next day.
        let due = Utc.with_ymd_and_hms(2026, 11, 1, 2, 30, 0).unwrap();
        assert_eq!(
            deliver_at(Chicago, due, tour),
            Utc.with_ymd_and_hms(2026, 11, 1, 14, 0, 0).unwrap()
        );
        // Phoenix keeps no daylight saving: 8 am MST is 15:00 UTC all year.
        let due = Utc.with_ymd_and_hms(2026, 3, 8, 9, 0, 0).unwrap();
        assert_eq!(
            deliver_at(Phoenix, due, tour),
            Utc.with_ymd_and_hms(2026, 3, 8, 15, 0, 0).unwrap()
        );
    }

    #[test]
    fn a_text_that_waiting_would_make_useless_goes_when_due() {
        // The 2-hour reminder of an 8 am tour is due at 6 am: 8 am would be too late, so it goes at 6.
        let tour = chicago(2026, 12, 2, 8, 0);
        assert_eq!(
            deliver_at(Chicago, chicago(2026, 12, 2, 6, 0), tour),
            chicago(2026, 12, 2, 6, 0)
        );
        // That of a 9 am tour waits until 8 (an hour before).
        let tour = chicago(2026, 12, 2, 9, 0);
        assert_eq!(
            deliver_at(Chicago, chicago(2026, 12, 2, 7, 0), tour),
            chicago(2026, 12, 2, 8, 0)
        );
        // 8:29 am: 8 am is less than 30 minutes before it.
        let tour = chicago(2026, 12, 2, 8, 29);
        assert_eq!(
            deliver_at(Chicago, chicago(2026, 12, 2, 6, 29), tour),
            chicago(2026, 12, 2, 6, 29)
        );
    }

    #[test]
    fn each_keyword_is_read_in_any_case_with_spaces_and_punctuation_ignored() {
        for body in ["C", "c", " y ", "Yes!", "yes.", "CONFIRM", "confirm"] {
            assert_eq!(Reply::parse(body), Reply::Confirm, "{body}");
        }
        for body in ["R", "r", "Reschedule", "RESCHEDULE?"] {
            assert_eq!(Reply::parse(body), Reply::Reschedule, "{body}");
        }
        assert_eq!(Reply::parse("Cancel"), Reply::Cancel);
        assert!(Reply::parse("CANCEL").revokes(), "a cancel is a revocation too");
        for (body, word) in [
            ("STOP", "STOP"),
            ("stop", "STOP"),
            ("Quit", "QUIT"),
            ("end", "END"),
            ("Revoke", "REVOKE"),
            ("opt out", "OPT OUT"),
            ("OPTOUT", "OPTOUT"),
            ("stopall", "STOPALL"),
            ("Unsubscribe", "UNSUBSCRIBE"),
        ] {
            assert_eq!(Reply::parse(body), Reply::Revoke { word: word.into() }, "{body}");
            assert!(Reply::parse(body).revokes());
        }
        assert_eq!(Reply::parse("help"), Reply::Help);
        assert_eq!(Reply::parse("INFO"), Reply::Help);
        assert_eq!(Reply::parse("Start"), Reply::Start);
        assert_eq!(Reply::parse("unstop"), Reply::Start);
        assert!(!Reply::parse("Start").revokes() && !Reply::parse("C").revokes());
    }

    #[test]
    fn a_longer_reply_that_asks_to_stop_revokes_and_anything_else_is_for_a_person() {
        assert_eq!(
            Reply::parse("Please stop texting me"),
            Reply::Revoke { word: "STOP".into() }
        );
        assert_eq!(
            Reply::parse("how do I opt out of these"),
            Reply::Revoke { word: "OPT OUT".into() }
        );
        // A tour is never cancelled by a sentence: only the keyword cancels.
        assert_eq!(Reply::parse("I might have to cancel, is 5pm free?"), Reply::Other);
        assert_eq!(
            Reply::parse("Can I bring my dog? We'll be there by the end of the day"),
            Reply::Other
        );
        assert_eq!(Reply::parse("yes I will come"), Reply::Other);
        assert_eq!(Reply::parse(""), Reply::Other);
        assert!(!Reply::parse("Is parking free?").revokes());
    }

    #[test]
    fn each_text_is_short_in_the_propertys_voice_and_carries_the_link_where_it_helps() {
        let link = "https://tours.maplegrove.example/tour?t=tour_3f6c0b8e9a7d4e21b5c4a3f2e1d0c9b8.m.1764600000.c8d1e2f3a4b5c6d7e8f9";
        let about = TextAbout {
            property: "Maple Grove Apartments",
            office_phone: Some("(512) 555-0100"),
            start: chicago(2026, 12, 1, 14, 0),
            zone: Chicago,
            link: Some(link),
        };
        let all = [
            TextKind::Confirmation,
            TextKind::Reminder,
            TextKind::LastReminder,
            TextKind::Moved,
            TextKind::Cancelled,
            TextKind::NotBooked,
            TextKind::CancelledAndStopped,
            TextKind::Stopped,
            TextKind::Help,
            TextKind::Attending,
            TextKind::NewTime,
            TextKind::Restarted,
        ];
        for kind in all {
            let text = wording(kind, &about);
            assert!(text.starts_with("Maple Grove Apartments: "), "{text}");
            assert!(segments(&text) <= 2, "{kind:?} costs {} parts: {text}", segments(&text));
            let without_link = wording(kind, &TextAbout { link: None, ..about });
            assert_eq!(segments(&without_link), 1, "{kind:?} without its link: {without_link}");
        }
        let confirmation = wording(TextKind::Confirmation, &about);
        assert_eq!(
            confirmation,
            format!(
                "Maple Grove Apartments: your tour is booked for Tue Dec 1, 2:00 PM. Reply C to confirm, R to \
                 reschedule. {link}"
            )
        );
        assert!(wording(TextKind::LastReminder, &about).contains("see you at 2:00 PM today"));
        assert!(wording(TextKind::Moved, &about).ends_with(link));
        assert_eq!(
            wording(TextKind::NotBooked, &about),
            format!(
                "Maple Grove Apartments: sorry, we could not book your tour on Tue Dec 1, 2:00 PM after all. Pick \
                 another time: {link}"
            )
        );
        // The texts that end texting say how to come back, and carry no link to act on the tour.
        for kind in [TextKind::Stopped, TextKind::CancelledAndStopped] {
            let text = wording(kind, &about);
            assert!(text.contains("START") && !text.contains(link), "{text}");
        }
        assert!(wording(TextKind::CancelledAndStopped, &about).contains("Tue Dec 1, 2:00 PM is cancelled"));
        assert!(wording(TextKind::Help, &about).contains("Call (512) 555-0100"));
        let no_phone = TextAbout {
            office_phone: None,
            ..about
        };
        assert!(wording(TextKind::Help, &no_phone).ends_with("Reply STOP to stop."));
    }

    #[test]
    fn a_text_costs_its_parts_as_carriers_count_them() {
        assert_eq!(segments(""), 1);
        assert_eq!(segments(&"a".repeat(160)), 1);
        assert_eq!(segments(&"a".repeat(161)), 2);
        assert_eq!(segments(&"a".repeat(306)), 2);
        assert_eq!(segments(&"a".repeat(307)), 3);
        // The euro sign is in the extension table: two septets.
        assert_eq!(segments(&format!("{}€", "a".repeat(158))), 1);
        assert_eq!(segments(&format!("{}€", "a".repeat(159))), 2);
        // A character outside GSM-7 makes the whole text UCS-2.
        assert_eq!(segments(&"ł".repeat(70)), 1);
        assert_eq!(segments(&"ł".repeat(71)), 2);
        assert_eq!(segments("Your tour is confirmed 👍"), 1);
        assert_eq!(
            segments(&format!("{}👍", "a".repeat(69))),
            2,
            "an emoji is two UTF-16 units"
        );
    }
}
