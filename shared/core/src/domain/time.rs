//! Spans of time in UTC.

use super::InvalidField;
use chrono::{DateTime, Duration, Utc};

/// A half-open UTC window `[start, end)` with `start < end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UtcWindow {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

impl UtcWindow {
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self, InvalidField> {
        if start < end {
            Ok(Self { start, end })
        } else {
            Err(InvalidField::new("window", "must end after it starts"))
        }
    }

    pub fn starting_at(start: DateTime<Utc>, length: Duration) -> Result<Self, InvalidField> {
        Self::new(start, start + length)
    }

    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    pub fn end(&self) -> DateTime<Utc> {
        self.end
    }

    pub fn length(&self) -> Duration {
        self.end - self.start
    }

    /// Whether two windows share any instant (touching ends do not overlap).
    pub fn overlaps(&self, other: &UtcWindow) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// The two halves, or `None` when the window is too short to split further (one second).
    pub fn halves(&self) -> Option<(UtcWindow, UtcWindow)> {
        let half = self.length() / 2;
        if half < Duration::seconds(1) {
            return None;
        }
        let mid = self.start + half;
        Some((
            UtcWindow {
                start: self.start,
                end: mid,
            },
            UtcWindow {
                start: mid,
                end: self.end,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, h, m, 0).unwrap()
    }

    #[test]
    fn a_window_must_end_after_it_starts() {
        assert!(UtcWindow::new(at(10, 0), at(10, 0)).is_err());
        assert!(UtcWindow::new(at(11, 0), at(10, 0)).is_err());
    }

    #[test]
    fn touching_windows_do_not_overlap_but_shared_minutes_do() {
        let a = UtcWindow::new(at(10, 0), at(10, 45)).unwrap();
        let b = UtcWindow::new(at(10, 45), at(11, 15)).unwrap();
        let c = UtcWindow::new(at(10, 30), at(11, 0)).unwrap();
        assert!(!a.overlaps(&b));
        assert!(a.overlaps(&c) && c.overlaps(&a));
    }

    #[test]
    fn halves_cover_the_window_exactly() {
        let w = UtcWindow::starting_at(at(0, 0), Duration::days(9)).unwrap();
        let (a, b) = w.halves().unwrap();
        assert_eq!((a.start(), a.end(), b.end()), (w.start(), b.start(), w.end()));
        assert_eq!(a.length(), Duration::hours(108));
        let tiny = UtcWindow::starting_at(at(0, 0), Duration::seconds(1)).unwrap();
        assert!(tiny.halves().is_none());
    }
}
