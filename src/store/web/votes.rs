//! Star votes and their tallies.
//!
//! Each subscriber has at most one genuine vote per issue (a new one replaces it) and, apart from it, the latest
//! vote that looked automated (flagged, with the reason), kept for inspection and left out of every tally.

use std::fmt;

use anyhow::Context;
use jiff::Timestamp;

use crate::clock::to_millis;
use crate::store::{Store, on_pool};

/// A rating from 1 to 5 stars; no other value can be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stars(u8);

impl Stars {
    /// The rating `text` names (`"4"`, with surrounding spaces allowed), or `None` for anything but 1 to 5.
    pub fn parse(text: &str) -> Option<Stars> {
        let value: u8 = text.trim().parse().ok()?;
        (1..=5).contains(&value).then_some(Stars(value))
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

/// One vote to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewVote<'a> {
    pub list_id: i64,
    pub issue_id: i64,
    pub subscriber_id: i64,
    pub stars: Stars,
    /// Why the vote looks automated; `None` for a vote that counts.
    pub flag: Option<&'a str>,
}

/// The genuine votes of an issue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub votes: i64,
    /// The sum of their stars.
    pub stars: i64,
}

impl Tally {
    /// The mean rating, or `None` without votes.
    pub fn average(&self) -> Option<f64> {
        (self.votes > 0).then(|| self.stars as f64 / self.votes as f64)
    }
}

/// "4.6/5 (23 votes)", "5/5 (1 vote)" or "no votes yet".
impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(average) = self.average() else { return f.write_str("no votes yet") };
        let shown = format!("{average:.1}");
        let shown = shown.strip_suffix(".0").unwrap_or(&shown);
        let noun = if self.votes == 1 { "vote" } else { "votes" };
        write!(f, "{shown}/5 ({} {noun})", self.votes)
    }
}

impl Store {
    /// Records a vote, replacing the subscriber's previous one of the same kind (genuine or flagged), and adds a
    /// `rating` event. Posting the same vote a hundred times leaves one vote.
    pub async fn record_vote(&self, vote: &NewVote<'_>, now: Timestamp) -> anyhow::Result<()> {
        let upsert = "INSERT INTO votes (issue_id, subscriber_id, stars, flagged, flag_reason, created_at, updated_at) \
                      VALUES ($1, $2, $3, $4, $5, $6, $6) \
                      ON CONFLICT (issue_id, subscriber_id, flagged) DO UPDATE SET stars = excluded.stars, \
                      flag_reason = excluded.flag_reason, updated_at = excluded.updated_at";
        let event = "INSERT INTO events (kind, list_id, issue_id, subscriber_id, flagged, detail, created_at) \
                     VALUES ('rating', $1, $2, $3, $4, $5, $6)";
        let stars = i64::from(vote.stars.get());
        let detail = match vote.flag {
            Some(reason) => format!("{stars} stars; flagged: {reason}"),
            None => format!("{stars} stars"),
        };
        let now = to_millis(now);
        on_pool!(self, pool => {
            let mut tx = pool.begin_with(crate::store::write_begin(pool)).await?;
            sqlx::query(upsert)
                .bind(vote.issue_id)
                .bind(vote.subscriber_id)
                .bind(stars)
                .bind(vote.flag.is_some())
                .bind(vote.flag)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(event)
                .bind(vote.list_id)
                .bind(vote.issue_id)
                .bind(vote.subscriber_id)
                .bind(vote.flag.is_some())
                .bind(&detail)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        })
        .context("cannot record the vote")
    }

    /// Records a flagged vote (and its `rating` event) only when the subscriber has no flagged vote for the issue
    /// yet: evidence of a prefetching scanner, kept once per link however often it comes back. Returns whether
    /// it was recorded.
    pub async fn record_flagged_once(&self, vote: &NewVote<'_>, now: Timestamp) -> anyhow::Result<bool> {
        let insert = "INSERT INTO votes (issue_id, subscriber_id, stars, flagged, flag_reason, created_at, updated_at) \
                      VALUES ($1, $2, $3, true, $4, $5, $5) ON CONFLICT (issue_id, subscriber_id, flagged) DO NOTHING";
        let event = "INSERT INTO events (kind, list_id, issue_id, subscriber_id, flagged, detail, created_at) \
                     VALUES ('rating', $1, $2, $3, true, $4, $5)";
        let stars = i64::from(vote.stars.get());
        let reason = vote.flag.unwrap_or("automated");
        let detail = format!("{stars} stars; flagged: {reason}");
        let now = to_millis(now);
        on_pool!(self, pool => {
            let mut tx = pool.begin_with(crate::store::write_begin(pool)).await?;
            let inserted = sqlx::query(insert)
                .bind(vote.issue_id)
                .bind(vote.subscriber_id)
                .bind(stars)
                .bind(reason)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if inserted > 0 {
                sqlx::query(event)
                    .bind(vote.list_id)
                    .bind(vote.issue_id)
                    .bind(vote.subscriber_id)
                    .bind(&detail)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(inserted > 0)
        })
        .context("cannot record a flagged vote")
    }

    /// The genuine (unflagged) votes of an issue.
    pub async fn tally(&self, issue_id: i64) -> anyhow::Result<Tally> {
        let sql = "SELECT COUNT(*), CAST(COALESCE(SUM(stars), 0) AS BIGINT) FROM votes \
                   WHERE issue_id = $1 AND flagged = false";
        let (votes, stars): (i64, i64) =
            on_pool!(self, pool => sqlx::query_as(sql).bind(issue_id).fetch_one(pool).await)
                .context("cannot count the votes")?;
        Ok(Tally { votes, stars })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_to_five_stars_parse() {
        assert_eq!(Stars::parse(" 4 ").map(Stars::get), Some(4));
        for bad in ["0", "6", "", "four", "-1", "4.5", "999999999999"] {
            assert_eq!(Stars::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_tally_reads_like_the_digest_shows_it() {
        assert_eq!(Tally { votes: 23, stars: 106 }.to_string(), "4.6/5 (23 votes)");
        assert_eq!(Tally { votes: 1, stars: 5 }.to_string(), "5/5 (1 vote)");
        assert_eq!(Tally::default().to_string(), "no votes yet");
    }
}
