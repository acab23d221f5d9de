//! The newest-N queries of the PostgreSQL store (a feed, its tombstones, a
//! range of it for an archive page): which index walks a feed's filter
//! drives, written as SQL with its parameters. It runs nothing.

use super::{Bind, COLUMNS, KEY_COLUMNS, Walk};
use crate::article::{ArticleFilter, Status};

/// Builds the newest-N query for `filter` among articles of `status`
/// (`Published` for a feed; `Withdrawn` for its tombstones).
pub(super) fn newest_query(
    filter: &ArticleFilter,
    limit: u32,
    status: Status,
) -> (String, Vec<Bind>) {
    walk_query(filter, &Walk::newest(status, limit))
}

/// Builds the query of `walk` over `filter`'s articles: newest first, at
/// most `walk.limit`, within its key range.
///
/// One filter list drives, as in the SQLite store. Sections: one subquery per
/// section walks `articles_section_newest` newest-first and stops after
/// `limit` rows, checking tags and authors on each row's key arrays. Tags (or
/// else authors): for each value, a lateral subquery walks that value's
/// `article_tags_newest` (`article_authors_newest`) rows newest-first and
/// stops after `limit` matches, checking authors against `article_authors`.
/// The candidates, at most values × limit, are then sorted. So a feed costs
/// about `limit` index steps per value however large the store is.
pub(super) fn walk_query(filter: &ArticleFilter, walk: &Walk) -> (String, Vec<Bind>) {
    let limit = i64::from(walk.limit);
    let status = walk.status;
    let columns = if walk.keys_only { KEY_COLUMNS } else { COLUMNS };
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
    let mut binds = vec![Bind::Text(status.as_str().to_owned()), Bind::Int(limit)];
    let mut bind = |b: Bind| {
        binds.push(b);
        binds.len()
    };
    // The key range, for the articles table (`range`) and a filter table (`range_d`).
    let (mut range, mut range_d) = (String::new(), String::new());
    if let Some(after) = &walk.after {
        let at = bind(Bind::Time(after.published_at));
        let id = bind(Bind::Text(after.id.as_str().to_owned()));
        range += &format!(" AND (published_at, id) > (${at}, ${id})");
        range_d += &format!(" AND (d.published_at, d.article_id) > (${at}, ${id})");
    }
    if let Some((before, inclusive)) = &walk.before {
        let op = if *inclusive { "<=" } else { "<" };
        let at = bind(Bind::Time(before.published_at));
        let id = bind(Bind::Text(before.id.as_str().to_owned()));
        range += &format!(" AND (published_at, id) {op} (${at}, ${id})");
        range_d += &format!(" AND (d.published_at, d.article_id) {op} (${at}, ${id})");
    }
    if !filter.sections.is_empty() {
        let mut conditions = String::new();
        if !filter.tags.is_empty() {
            let n = bind(Bind::Texts(filter.tags.clone()));
            conditions += &format!(" AND tag_keys && ${n}::text[]");
        }
        if !filter.authors.is_empty() {
            let n = bind(Bind::Texts(filter.authors.clone()));
            conditions += &format!(" AND author_keys && ${n}::text[]");
        }
        let mut parts = Vec::with_capacity(filter.sections.len());
        for section in &filter.sections {
            let n = bind(Bind::Text(section.clone()));
            parts.push(format!(
                "(SELECT {columns} FROM articles WHERE status = $1 AND section_key = ${n}{conditions}{listed}{range} \
                 ORDER BY published_at DESC, id DESC LIMIT $2)"
            ));
        }
        return (
            format!(
                "SELECT * FROM ({}) AS candidates ORDER BY published_at DESC, id DESC LIMIT $2",
                parts.join(" UNION ALL ")
            ),
            binds,
        );
    }
    let (table, column, values, others) = if !filter.tags.is_empty() {
        (
            "article_tags",
            "tag_key",
            &filter.tags[..],
            &filter.authors[..],
        )
    } else if !filter.authors.is_empty() {
        (
            "article_authors",
            "author_key",
            &filter.authors[..],
            &[][..],
        )
    } else {
        return (
            format!(
                "SELECT {columns} FROM articles WHERE status = $1{listed}{range} \
                 ORDER BY published_at DESC, id DESC LIMIT $2"
            ),
            binds,
        );
    };
    let driving = bind(Bind::Texts(values.to_vec()));
    let mut check = String::new();
    if !others.is_empty() {
        let n = bind(Bind::Texts(others.to_vec()));
        check = format!(
            " AND EXISTS (SELECT 1 FROM article_authors f \
             WHERE f.article_id = d.article_id AND f.author_key = ANY(${n}::text[]))"
        );
    }
    (
        format!(
            "SELECT {columns} FROM articles WHERE status = $1 AND id IN ( \
                 SELECT d.article_id FROM unnest(${driving}::text[]) AS v(key) \
                 CROSS JOIN LATERAL (SELECT d.article_id FROM {table} d \
                     WHERE d.{column} = v.key AND d.status = $1{check}{listed_d}{range_d} \
                     ORDER BY d.published_at DESC, d.article_id DESC LIMIT $2) AS d) \
             ORDER BY published_at DESC, id DESC LIMIT $2"
        ),
        binds,
    )
}
