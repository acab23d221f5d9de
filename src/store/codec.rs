//! How an [`Article`] maps onto the store's columns, written once for both
//! backends.
//!
//! Owns the column list every query selects, the decoding of one row into a
//! [`StoredArticle`] (checking what a CMS writing rows directly could get
//! wrong), the encoding of an article into column values, and the upsert
//! transaction's logic: compare content hashes, give each real change the
//! next revision, write the changes, advance the counter. A backend supplies
//! only what differs between databases: how a column is read from its row
//! type ([`ArticleRow`]) and the statements of one upsert ([`UpsertSteps`]).
//! A new article field is one column here, one in each backend's INSERT and
//! one in each migration. This module never opens a connection itself.

use std::collections::HashMap;
use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::{Revision, StoreError, StoredArticle, Upserted};
use crate::article::{Article, ArticleId, Status, match_key};

/// The error a backend reports for one column it could not read.
pub type ColumnError = Box<dyn std::error::Error + Send + Sync>;

/// The columns every backend reads an article from, in this order (both
/// stores select them so, and read them by position).
pub(crate) const COLUMNS: &str = "id, revision, status, published_at, updated_at, section, url, \
     headline, standfirst, body_html, authors, source, tags, image, related, withdrawn_at";

/// The columns of a keys-only walk ([`super::Walk::keys_only`]), in this order.
pub(crate) const KEY_COLUMNS: &str = "published_at, id";

/// What an upsert of an existing id replaces, as an `ON CONFLICT (id) DO
/// UPDATE SET` list both backends use (PostgreSQL adds its key arrays).
pub(crate) const UPDATE_COLUMNS: &str = "revision = excluded.revision, status = excluded.status, \
     published_at = excluded.published_at, updated_at = excluded.updated_at, \
     section = excluded.section, section_key = excluded.section_key, url = excluded.url, \
     headline = excluded.headline, standfirst = excluded.standfirst, \
     body_html = excluded.body_html, authors = excluded.authors, source = excluded.source, \
     tags = excluded.tags, image = excluded.image, related = excluded.related, \
     content_hash = excluded.content_hash";

/// Positions in [`COLUMNS`].
pub(crate) mod col {
    pub const ID: usize = 0;
    pub const REVISION: usize = 1;
    pub const STATUS: usize = 2;
    pub const PUBLISHED_AT: usize = 3;
    pub const UPDATED_AT: usize = 4;
    pub const SECTION: usize = 5;
    pub const URL: usize = 6;
    pub const HEADLINE: usize = 7;
    pub const STANDFIRST: usize = 8;
    pub const BODY_HTML: usize = 9;
    pub const AUTHORS: usize = 10;
    pub const SOURCE: usize = 11;
    pub const TAGS: usize = 12;
    pub const IMAGE: usize = 13;
    pub const RELATED: usize = 14;
    pub const WITHDRAWN_AT: usize = 15;
}

/// The name of column `index` of [`COLUMNS`], for error messages.
pub(crate) fn column_name(index: usize) -> &'static str {
    COLUMNS.split(',').nth(index).map_or("?", str::trim)
}

/// One row of [`COLUMNS`] as a backend holds it. Each method reads one column
/// by position; SQL NULL is `None`. Text is borrowed from the row where the
/// article does not keep it, so a URL or a JSON column is parsed without a copy.
/// Every sqlx row of a [`ColumnDialect`] database is one.
pub trait ArticleRow {
    fn text(&self, column: usize) -> Result<Option<&str>, ColumnError>;
    fn owned_text(&self, column: usize) -> Result<Option<String>, ColumnError>;
    fn int(&self, column: usize) -> Result<i64, ColumnError>;
    fn time(&self, column: usize) -> Result<DateTime<Utc>, ColumnError>;
    /// A nullable time column.
    fn opt_time(&self, column: usize) -> Result<Option<DateTime<Utc>>, ColumnError>;
    /// A JSON column read straight into its type.
    fn json<T: DeserializeOwned>(&self, column: usize) -> Result<Option<T>, ColumnError>;
}

/// How a database keeps the columns whose types differ between the two:
/// times and JSON.
pub trait ColumnDialect: sqlx::Database {
    fn time(row: &Self::Row, column: usize) -> Result<DateTime<Utc>, ColumnError>;
    fn opt_time(row: &Self::Row, column: usize) -> Result<Option<DateTime<Utc>>, ColumnError>;
    fn json<T: DeserializeOwned>(row: &Self::Row, column: usize) -> Result<Option<T>, ColumnError>;
}

impl<R> ArticleRow for R
where
    R: sqlx::Row,
    R::Database: ColumnDialect<Row = R>,
    usize: sqlx::ColumnIndex<R>,
    for<'r> &'r str: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn text(&self, column: usize) -> Result<Option<&str>, ColumnError> {
        Ok(self.try_get(column)?)
    }

    fn owned_text(&self, column: usize) -> Result<Option<String>, ColumnError> {
        Ok(self.try_get(column)?)
    }

    fn int(&self, column: usize) -> Result<i64, ColumnError> {
        Ok(self.try_get(column)?)
    }

    fn time(&self, column: usize) -> Result<DateTime<Utc>, ColumnError> {
        R::Database::time(self, column)
    }

    fn opt_time(&self, column: usize) -> Result<Option<DateTime<Utc>>, ColumnError> {
        R::Database::opt_time(self, column)
    }

    fn json<T: DeserializeOwned>(&self, column: usize) -> Result<Option<T>, ColumnError> {
        R::Database::json(self, column)
    }
}

/// Turns one row into a [`StoredArticle`] field by field, with no detour
/// through `serde_json::Value`. Rows are trusted to the extent the types need
/// nothing more: the id's shape, URLs, the status and the JSON columns'
/// shapes are still checked (a CMS may write rows directly), and a row that
/// fails is [`StoreError::Corrupt`], naming the article and the column.
pub(crate) fn decode(row: &impl ArticleRow) -> Result<StoredArticle, StoreError> {
    let unreadable = |source: ColumnError| StoreError::Query {
        doing: "decoding an article",
        source: sqlx::Error::Decode(source),
    };
    let id = row
        .text(col::ID)
        .map_err(unreadable)?
        .ok_or_else(|| unreadable("the article id is null".into()))?;
    let d = RowDecoder { id };
    let text = |i| row.text(i).map_err(|e| d.corrupt(i, e));
    let owned = |i| row.owned_text(i).map_err(|e| d.corrupt(i, e));
    let time = |i| row.time(i).map_err(|e| d.corrupt(i, e));
    let article = Article {
        id: d.id()?,
        url: d.url(col::URL, d.required(col::URL, text(col::URL)?)?)?,
        headline: d.required(col::HEADLINE, owned(col::HEADLINE)?)?,
        standfirst: owned(col::STANDFIRST)?,
        body_html: owned(col::BODY_HTML)?,
        authors: d.required(col::AUTHORS, d.json(row, col::AUTHORS)?)?,
        // JSON `null` in a nullable column is as good as SQL NULL.
        source: d.json::<Option<_>>(row, col::SOURCE)?.flatten(),
        section: owned(col::SECTION)?,
        tags: d.required(col::TAGS, d.json(row, col::TAGS)?)?,
        image: d.json::<Option<_>>(row, col::IMAGE)?.flatten(),
        related: d.required(col::RELATED, d.json(row, col::RELATED)?)?,
        published_at: time(col::PUBLISHED_AT)?,
        updated_at: time(col::UPDATED_AT)?,
        status: d.status(d.required(col::STATUS, text(col::STATUS)?)?)?,
    };
    let revision = row
        .int(col::REVISION)
        .map_err(|e| d.corrupt(col::REVISION, e))?;
    let withdrawn_at = row
        .opt_time(col::WITHDRAWN_AT)
        .map_err(|e| d.corrupt(col::WITHDRAWN_AT, e))?;
    Ok(StoredArticle {
        article,
        revision: Revision(revision),
        withdrawn_at,
    })
}

/// The checks and error messages of [`decode`], for the row of article `id`.
struct RowDecoder<'r> {
    id: &'r str,
}

impl RowDecoder<'_> {
    /// The error for column `column` of this row.
    fn corrupt(&self, column: usize, reason: impl fmt::Display) -> StoreError {
        StoreError::Corrupt {
            id: self.id.to_owned(),
            reason: format!("{}: {reason}", column_name(column)),
        }
    }

    fn id(&self) -> Result<ArticleId, StoreError> {
        self.id.parse().map_err(|e| self.corrupt(col::ID, e))
    }

    /// A column the schema declares NOT NULL.
    fn required<T>(&self, column: usize, value: Option<T>) -> Result<T, StoreError> {
        value.ok_or_else(|| StoreError::Corrupt {
            id: self.id.to_owned(),
            reason: format!("{} is null", column_name(column)),
        })
    }

    fn url(&self, column: usize, text: &str) -> Result<url::Url, StoreError> {
        url::Url::parse(text).map_err(|e| self.corrupt(column, e))
    }

    fn status(&self, text: &str) -> Result<Status, StoreError> {
        text.parse()
            .map_err(|e: String| self.corrupt(col::STATUS, e))
    }

    fn json<T: DeserializeOwned>(
        &self,
        row: &impl ArticleRow,
        column: usize,
    ) -> Result<Option<T>, StoreError> {
        row.json(column).map_err(|e| self.corrupt(column, e))
    }
}

/// Each row of a query's stream decoded as it arrives (decoding overlaps
/// the database's work, and a row is freed once read instead of every row
/// being held until the last arrives). `doing` names the query in errors.
pub(crate) fn decode_rows<R: ArticleRow>(
    rows: impl futures_util::Stream<Item = Result<R, sqlx::Error>>,
    doing: &'static str,
) -> impl futures_util::Stream<Item = Result<StoredArticle, StoreError>> {
    use futures_util::StreamExt;
    rows.map(move |row| decode(&row.map_err(StoreError::query(doing))?))
}

/// Every row of a query's stream, decoded as it arrives ([`decode_rows`]).
pub(crate) async fn collect_rows<R: ArticleRow>(
    rows: impl futures_util::Stream<Item = Result<R, sqlx::Error>>,
    limit: u32,
    doing: &'static str,
) -> Result<Vec<StoredArticle>, StoreError> {
    use futures_util::TryStreamExt;
    let mut articles = std::pin::pin!(decode_rows(rows, doing));
    // `limit` is at most the feed limit (10 000), so this is never large.
    let mut out = Vec::with_capacity(usize::try_from(limit).unwrap_or(0).min(10_000));
    while let Some(article) = articles.try_next().await? {
        out.push(article);
    }
    Ok(out)
}

/// One article that differs from what is stored, with the revision it takes.
pub struct Change<'a> {
    pub article: &'a Article,
    pub hash: Vec<u8>,
    pub revision: i64,
    /// A stored version is replaced (its filter rows must go).
    pub existed: bool,
}

impl<'a> Change<'a> {
    /// The article's column values, as both backends write them.
    pub(crate) fn columns(&self) -> ArticleColumns<'_> {
        let a = self.article;
        ArticleColumns {
            id: a.id.as_str(),
            revision: self.revision,
            status: a.status.as_str(),
            published_at: a.published_at,
            updated_at: a.updated_at,
            section: a.section.as_deref(),
            section_key: a.section.as_deref().map(match_key),
            url: a.url.as_str(),
            headline: a.headline.as_str(),
            standfirst: a.standfirst.as_deref(),
            body_html: a.body_html.as_deref(),
            authors: json_text(&a.authors),
            source: a.source.as_ref().map(json_text),
            tags: json_text(&a.tags),
            image: a.image.as_ref().map(json_text),
            related: json_text(&a.related),
            hash: &self.hash,
        }
    }
}

/// An article encoded for the `articles` table: lists and structs as JSON
/// text (SQLite keeps it as is; PostgreSQL casts it to `jsonb`), the section's
/// match key beside it.
pub(crate) struct ArticleColumns<'a> {
    pub id: &'a str,
    pub revision: i64,
    pub status: &'static str,
    pub published_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub section: Option<&'a str>,
    pub section_key: Option<String>,
    pub url: &'a str,
    pub headline: &'a str,
    pub standfirst: Option<&'a str>,
    pub body_html: Option<&'a str>,
    pub authors: String,
    pub source: Option<String>,
    pub tags: String,
    pub image: Option<String>,
    pub related: String,
    pub hash: &'a [u8],
}

/// What an upsert needs that differs between the databases. Implemented on
/// sqlx's database types; the statements common to both are in [`upsert`].
#[async_trait]
pub trait UpsertDialect: sqlx::Database {
    /// Whether parameters are numbered (`$1`) rather than positional (`?`).
    const NUMBERED_PARAMS: bool;
    /// Appended to the revision read: what keeps concurrent writers in turn
    /// where the transaction's start does not already.
    const LOCK_REVISION: &'static str;
    /// Appended to a claim's row selection: what lets replicas claim
    /// different rows at once where a claim is not already one write.
    const SKIP_LOCKED: &'static str;
    /// Writes the changed articles and their filter rows ([`upsert`] never
    /// calls it with none).
    async fn write(conn: &mut Self::Connection, changes: &[Change<'_>]) -> Result<(), StoreError>;

    /// The marker for the `n`th (1-based) bound parameter.
    fn param(n: usize) -> String {
        if Self::NUMBERED_PARAMS {
            format!("${n}")
        } else {
            "?".to_owned()
        }
    }
}

/// Inserts or updates `articles` in order in the transaction `tx`, and
/// commits it: content identical to what is stored changes nothing and takes no
/// revision; each real change takes the next one. `chunk` articles are
/// looked up and written at a time.
pub(crate) async fn upsert<DB>(
    mut tx: sqlx::Transaction<'_, DB>,
    articles: &[Article],
    chunk: usize,
) -> Result<Vec<Upserted>, StoreError>
where
    DB: UpsertDialect,
    for<'e> &'e mut DB::Connection: sqlx::Executor<'e, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'r> String: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    for<'r> Option<Vec<u8>>: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    for<'r> i64: sqlx::Encode<'r, DB> + sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    (String, Option<Vec<u8>>): for<'r> sqlx::FromRow<'r, DB::Row>,
    (i64,): for<'r> sqlx::FromRow<'r, DB::Row>,
{
    let conn = &mut *tx;
    let mut outcomes = Vec::with_capacity(articles.len());
    let sql = format!(
        "SELECT revision FROM store_state WHERE singleton = 1{}",
        DB::LOCK_REVISION
    );
    let start: i64 = sqlx::query_scalar::<DB, i64>(sqlx::AssertSqlSafe(sql))
        .fetch_one(&mut *conn)
        .await
        .map_err(StoreError::query("reading the store revision"))?;
    let mut revision = start;
    for chunk in distinct_id_chunks(articles, chunk) {
        let markers: Vec<String> = (1..=chunk.len()).map(DB::param).collect();
        let sql = format!(
            "SELECT id, content_hash FROM articles WHERE id IN ({})",
            markers.join(", ")
        );
        let mut lookup = sqlx::query_as::<DB, (String, Option<Vec<u8>>)>(sqlx::AssertSqlSafe(sql));
        for a in chunk {
            lookup = lookup.bind(a.id.as_str());
        }
        let stored: HashMap<String, Option<Vec<u8>>> = lookup
            .fetch_all(&mut *conn)
            .await
            .map_err(StoreError::query("looking up stored articles"))?
            .into_iter()
            .collect();
        let mut changed = Vec::new();
        for article in chunk {
            let hash = content_hash(article);
            let existed = match stored.get(article.id.as_str()) {
                Some(Some(old)) if *old == hash => {
                    outcomes.push(Upserted::Unchanged);
                    continue;
                }
                Some(_) => true,
                None => false,
            };
            revision += 1;
            outcomes.push(if existed {
                Upserted::Updated(Revision(revision))
            } else {
                Upserted::Inserted(Revision(revision))
            });
            changed.push(Change {
                article,
                hash,
                revision,
                existed,
            });
        }
        if !changed.is_empty() {
            DB::write(conn, &changed).await?;
        }
    }
    if revision != start {
        let sql = format!(
            "UPDATE store_state SET revision = {} WHERE singleton = 1",
            DB::param(1)
        );
        sqlx::query::<DB>(sqlx::AssertSqlSafe(sql))
            .bind(revision)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::query("advancing the store revision"))?;
    }
    tx.commit()
        .await
        .map_err(StoreError::query("committing an import transaction"))?;
    Ok(outcomes)
}

/// Splits `articles` into runs of at most `max` with no id twice in a run, so
/// a batch that updates the same article twice applies both in order.
fn distinct_id_chunks(articles: &[Article], max: usize) -> Vec<&[Article]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut seen = std::collections::HashSet::new();
    for (i, a) in articles.iter().enumerate() {
        if i - start == max || !seen.insert(a.id.as_str()) {
            chunks.push(&articles[start..i]);
            start = i;
            seen.clear();
            seen.insert(a.id.as_str());
        }
    }
    chunks.push(&articles[start..]);
    chunks
}

/// A value as JSON text for a JSON column; our own plain structs always
/// serialise.
pub(crate) fn json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

/// The article's tags as filter keys: distinct match keys, sorted, so
/// `["UN", "un"]` is one key.
pub(crate) fn tag_keys(article: &Article) -> Vec<String> {
    match_keys(article.tags.iter().map(String::as_str))
}

/// The article's author names as filter keys, like [`tag_keys`].
pub(crate) fn author_keys(article: &Article) -> Vec<String> {
    match_keys(article.authors.iter().map(|a| a.name.as_str()))
}

fn match_keys<'a>(values: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = values.map(match_key).collect();
    out.sort();
    out.dedup();
    out
}

/// A fixed hash of an article's content, so re-importing identical content is
/// recognised without comparing every column. serde_json writes struct fields
/// in declaration order and lists in their order, so the encoding is stable.
pub(crate) fn content_hash(article: &Article) -> Vec<u8> {
    let mut hasher = Sha256::new();
    // Serialising our own plain struct cannot fail; hash the error text if it ever does.
    match serde_json::to_vec(article) {
        Ok(bytes) => hasher.update(&bytes),
        Err(e) => hasher.update(e.to_string().as_bytes()),
    }
    hasher.finalize().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_positions_match_the_column_list() {
        let names: Vec<&str> = COLUMNS.split(',').map(str::trim).collect();
        for (position, name) in [
            (col::ID, "id"),
            (col::REVISION, "revision"),
            (col::STATUS, "status"),
            (col::PUBLISHED_AT, "published_at"),
            (col::UPDATED_AT, "updated_at"),
            (col::SECTION, "section"),
            (col::URL, "url"),
            (col::HEADLINE, "headline"),
            (col::STANDFIRST, "standfirst"),
            (col::BODY_HTML, "body_html"),
            (col::AUTHORS, "authors"),
            (col::SOURCE, "source"),
            (col::TAGS, "tags"),
            (col::IMAGE, "image"),
            (col::RELATED, "related"),
            (col::WITHDRAWN_AT, "withdrawn_at"),
        ] {
            assert_eq!(names[position], name);
            assert_eq!(column_name(position), name);
        }
        assert_eq!(names.len(), 16);
    }

    #[test]
    fn match_keys_are_distinct_and_sorted() {
        assert_eq!(
            match_keys(["World", "UN", "un", "world"].into_iter()),
            vec!["un".to_owned(), "world".to_owned()]
        );
    }
}
