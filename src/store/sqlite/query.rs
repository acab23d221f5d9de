//! The newest-N query of the SQLite store: which index walks a feed's filter
//! drives, written as SQL with its parameters. It runs nothing.

use super::{AUTHORS, Bind, COLUMNS, FilterTable, TAGS, placeholders};
use crate::article::{ArticleFilter, Status};

/// Builds the newest-N query for `filter` among articles of `status`
/// (`Published` for a feed; `Withdrawn` for its tombstones).
///
/// One filter list "drives": for each of its values, a subquery walks that
/// value's index newest-first and stops after `limit` matches, checking the
/// other filters by primary-key lookups. The union of those candidates (at most
/// values × limit ids) is then sorted. So a feed costs about `limit` index steps
/// per value however large the store is, and no query scans a table.
pub(super) fn newest_query(
    filter: &ArticleFilter,
    limit: u32,
    status: Status,
) -> (String, Vec<Bind>) {
    let limit = i64::from(limit);
    let mut binds = Vec::new();
    let published = status.as_str();
    // Withdrawn rows count only when they were published first (the store
    // timed their withdrawal), so rows never listed cannot crowd out the
    // limit: checked in every walk, before it stops.
    let (listed, listed_d) = if status == Status::Withdrawn {
        (
            " AND withdrawn_at IS NOT NULL",
            " AND EXISTS (SELECT 1 FROM articles w WHERE w.id = d.article_id AND w.withdrawn_at IS NOT NULL)",
        )
    } else {
        ("", "")
    };

    // `EXISTS` checks for the lists that do not drive, against an article id expression.
    let exists = |binds: &mut Vec<Bind>, id_expr: &str, t: &FilterTable, values: &[String]| {
        if values.is_empty() {
            return String::new();
        }
        binds.extend(values.iter().cloned().map(Bind::Text));
        format!(
            " AND EXISTS (SELECT 1 FROM {} f WHERE f.article_id = {id_expr} AND f.{} IN ({}))",
            t.table,
            t.column,
            placeholders(values.len())
        )
    };

    let mut subqueries = Vec::new();
    if !filter.sections.is_empty() {
        for section in &filter.sections {
            binds.push(Bind::Text(published.to_owned()));
            binds.push(Bind::Text(section.clone()));
            let mut sql = String::from(
                "SELECT a.id FROM articles a WHERE a.status = ? AND a.section_key = ?",
            );
            sql += listed;
            sql += &exists(&mut binds, "a.id", &TAGS, &filter.tags);
            sql += &exists(&mut binds, "a.id", &AUTHORS, &filter.authors);
            sql += " ORDER BY a.published_at DESC, a.id DESC LIMIT ?";
            binds.push(Bind::Int(limit));
            subqueries.push(sql);
        }
    } else if !filter.tags.is_empty() || !filter.authors.is_empty() {
        // Tags drive when given (authors, if any, are checked per row); else authors.
        let (driver, values, others): (&FilterTable, &[String], &[String]) =
            if !filter.tags.is_empty() {
                (&TAGS, &filter.tags, &filter.authors)
            } else {
                (&AUTHORS, &filter.authors, &[])
            };
        for value in values {
            binds.push(Bind::Text(value.clone()));
            binds.push(Bind::Text(published.to_owned()));
            let mut sql = format!(
                "SELECT d.article_id AS id FROM {} d WHERE d.{} = ? AND d.status = ?{listed_d}",
                driver.table, driver.column
            );
            sql += &exists(&mut binds, "d.article_id", &AUTHORS, others);
            sql += " ORDER BY d.published_at DESC, d.article_id DESC LIMIT ?";
            binds.push(Bind::Int(limit));
            subqueries.push(sql);
        }
    } else {
        binds.push(Bind::Text(published.to_owned()));
        binds.push(Bind::Int(limit));
        return (
            format!(
                "SELECT {COLUMNS} FROM articles WHERE status = ?{listed} \
                 ORDER BY published_at DESC, id DESC LIMIT ?"
            ),
            binds,
        );
    }
    let candidates = subqueries
        .iter()
        .map(|s| format!("SELECT id FROM ({s})"))
        .collect::<Vec<_>>()
        .join(" UNION ");
    binds.push(Bind::Int(limit));
    (
        format!(
            "SELECT {COLUMNS} FROM articles WHERE id IN ({candidates}) \
             ORDER BY published_at DESC, id DESC LIMIT ?"
        ),
        binds,
    )
}
