//! The newest-N queries of the SQLite store (a feed, its tombstones, a range
//! of it for an archive page): which index walks a feed's filter drives,
//! written as SQL with its parameters. It runs nothing.

use super::{AUTHORS, Bind, COLUMNS, FilterTable, KEY_COLUMNS, TAGS, Walk, placeholders};
use crate::article::{ArticleFilter, Status};

/// Builds the query of `walk` over `filter`'s articles: newest first, at
/// most `walk.limit`, within its key range.
///
/// One filter list "drives": for each of its values, a subquery walks that
/// value's index newest-first (from the range's upper end) and stops after
/// `limit` matches, checking the other filters by primary-key lookups. The
/// union of those candidates (at most values × limit ids) is then sorted. So
/// a walk costs about `limit` index steps per value however large the store
/// is, and no query scans a table.
pub(super) fn walk_query(filter: &ArticleFilter, walk: &Walk) -> (String, Vec<Bind>) {
    let limit = i64::from(walk.limit);
    let status = walk.status;
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
    // The key range, on the walked table's own columns.
    let range = |binds: &mut Vec<Bind>, published_at: &str, id: &str| {
        let mut sql = String::new();
        if let Some(after) = &walk.after {
            sql += &format!(" AND ({published_at}, {id}) > (?, ?)");
            binds.push(Bind::Time(after.published_at));
            binds.push(Bind::Text(after.id.as_str().to_owned()));
        }
        if let Some((before, inclusive)) = &walk.before {
            let op = if *inclusive { "<=" } else { "<" };
            sql += &format!(" AND ({published_at}, {id}) {op} (?, ?)");
            binds.push(Bind::Time(before.published_at));
            binds.push(Bind::Text(before.id.as_str().to_owned()));
        }
        sql
    };
    let columns = if walk.keys_only { KEY_COLUMNS } else { COLUMNS };

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
            sql += &range(&mut binds, "a.published_at", "a.id");
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
            sql += &range(&mut binds, "d.published_at", "d.article_id");
            sql += &exists(&mut binds, "d.article_id", &AUTHORS, others);
            sql += " ORDER BY d.published_at DESC, d.article_id DESC LIMIT ?";
            binds.push(Bind::Int(limit));
            subqueries.push(sql);
        }
    } else {
        binds.push(Bind::Text(published.to_owned()));
        let range = range(&mut binds, "published_at", "id");
        binds.push(Bind::Int(limit));
        return (
            format!(
                "SELECT {columns} FROM articles WHERE status = ?{listed}{range} \
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
            "SELECT {columns} FROM articles WHERE id IN ({candidates}) \
             ORDER BY published_at DESC, id DESC LIMIT ?"
        ),
        binds,
    )
}
