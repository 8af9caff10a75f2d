//! Errors in a workflow file: where (file, line, column) and what to do about it.

use std::fmt;

use super::model::Location;

/// One problem in a workflow file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// The file as the user named it.
    pub file: String,
    /// Where in the file; `None` when the problem is the file as a whole (it cannot be read).
    pub location: Option<Location>,
    pub message: String,
}

impl fmt::Display for SpecError {
    /// `FILE:LINE:COLUMN: MESSAGE`, or `FILE: MESSAGE` without a location.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Some(at) => write!(f, "{}:{}:{}: {}", self.file, at.line, at.column, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// Every problem found in a workflow file (at least one), ordered by position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SpecErrors {
    pub errors: Vec<SpecError>,
}

impl SpecErrors {
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, SpecError> {
        self.errors.iter()
    }
}

impl fmt::Display for SpecErrors {
    /// One error per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl<'a> IntoIterator for &'a SpecErrors {
    type Item = &'a SpecError;
    type IntoIter = std::slice::Iter<'a, SpecError>;
    fn into_iter(self) -> Self::IntoIter {
        self.errors.iter()
    }
}

/// Collects errors for one file while it is checked.
pub(crate) struct Collector {
    file: String,
    errors: Vec<SpecError>,
}

impl Collector {
    pub fn new(file: &str) -> Collector {
        Collector { file: file.to_owned(), errors: Vec::new() }
    }

    pub fn at(&mut self, location: Location, message: impl Into<String>) {
        self.errors.push(SpecError {
            file: self.file.clone(),
            location: Some(location),
            message: message.into(),
        });
    }

    /// `Ok(value)` when nothing was collected; otherwise every error, in file order (errors at
    /// the same place keep the order they were found in).
    pub fn finish<T>(mut self, value: T) -> Result<T, SpecErrors> {
        if self.errors.is_empty() {
            return Ok(value);
        }
        self.errors.sort_by_key(|e| e.location);
        self.errors.dedup();
        Err(SpecErrors { errors: self.errors })
    }
}

/// The known name closest to `name`, when it is close enough to be a likely typo.
pub(crate) fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let length = name.chars().count();
    let limit = if length < 3 { 0 } else { (length / 3).max(1) };
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// ` (did you mean `X`?)`, or nothing.
pub(crate) fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    match suggest(name, candidates) {
        Some(c) => format!(" (did you mean `{c}`?)"),
        None => String::new(),
    }
}

/// Levenshtein distance, with a transposition of neighbours counting as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[i - 1][j] + 1).min(rows[i][j - 1] + 1).min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = d;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_catch_typos_but_not_strangers() {
        assert_eq!(suggest("biuld", ["build", "test"]), Some("build"));
        assert_eq!(suggest("tset", ["build", "test"]), Some("test"));
        assert_eq!(suggest("runn", ["run", "needs"]), Some("run"));
        assert_eq!(suggest("deploy", ["build", "test"]), None);
        assert_eq!(suggest("a", ["b"]), None);
        assert_eq!(did_you_mean("x", ["build"]), "");
    }

    #[test]
    fn errors_print_file_line_column() {
        let mut c = Collector::new("w.yaml");
        c.at(Location { line: 3, column: 5 }, "second");
        c.at(Location { line: 1, column: 1 }, "first");
        let errors = c.finish(()).unwrap_err();
        assert_eq!(errors.to_string(), "w.yaml:1:1: first\nw.yaml:3:5: second");
    }
}
