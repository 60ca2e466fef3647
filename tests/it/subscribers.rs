//! Subscribers in the store, on both backends: adding, importing in batches, removing and erasing.

use tidings::domain::{ConsentSource, SubscriberEmail, SubscriberName, SubscriptionStatus, SuppressionReason};
use tidings::store::{AddOutcome, ImportBatch, ImportRow, SubscriberFilter};

use crate::both_backends;
use crate::helpers::TestDatabase;

fn email(address: &str) -> SubscriberEmail {
    SubscriberEmail::parse(address).expect("valid address")
}

fn row(line: u64, address: &str) -> ImportRow {
    ImportRow {
        line,
        email: email(address),
        name: SubscriberName::parse(&format!("Person {line}")).expect("name"),
        attributes: "{}".to_owned(),
        time_zone: None,
        standing: Default::default(),
    }
}

async fn add(db: &TestDatabase, address: &str) -> AddOutcome {
    db.store
        .add_subscriber(
            db.list_id,
            &email(address),
            &SubscriberName::default(),
            None,
            SubscriptionStatus::Active,
            ConsentSource::Cli,
            db.clock.now(),
        )
        .await
        .expect("add subscriber")
}

async fn count(db: &TestDatabase, status: Option<SubscriptionStatus>) -> usize {
    let filter = SubscriberFilter { list_id: Some(db.list_id), status };
    db.store.list_subscribers(filter, None, 100_000).await.expect("list").len()
}

both_backends! {
    async fn adding_an_address_twice_keeps_one_subscription(db) {
        assert!(matches!(add(&db, "ana@example.com").await, AddOutcome::Added { .. }));
        let again = add(&db, "ana@EXAMPLE.com").await;
        assert!(matches!(again, AddOutcome::AlreadyOnList { status: SubscriptionStatus::Active, .. }), "{again:?}");
        assert_eq!(count(&db, None).await, 1);
    }

    async fn an_unsubscribed_person_is_not_signed_up_again_by_add_or_import(db) {
        let AddOutcome::Added { subscriber_id } = add(&db, "ana@example.com").await else { panic!("not added") };
        assert!(db.store.unsubscribe(db.list_id, subscriber_id, db.clock.now()).await.expect("unsubscribe"));
        assert!(!db.store.unsubscribe(db.list_id, subscriber_id, db.clock.now()).await.expect("again"));

        let again = add(&db, "ana@example.com").await;
        assert!(matches!(again, AddOutcome::AlreadyOnList { status: SubscriptionStatus::Unsubscribed, .. }));
        let session = db.store.begin_import(db.list_id).await.expect("begin import");
        let outcome = db.store.import_batch(&session, &ImportBatch::new(vec![row(2, "ana@example.com")]), db.clock.now()).await.expect("import");
        assert_eq!((outcome.added, outcome.already_subscribed), (0, 1));
        assert_eq!(count(&db, Some(SubscriptionStatus::Unsubscribed)).await, 1);
        assert_eq!(count(&db, Some(SubscriptionStatus::Active)).await, 0);
    }

    async fn an_import_batch_adds_new_rows_and_names_repeated_ones(db) {
        add(&db, "before@example.com").await;
        let session = db.store.begin_import(db.list_id).await.expect("begin import");
        let first = [row(2, "a@example.com"), row(3, "before@example.com"), row(4, "b@example.com"), row(5, "a@EXAMPLE.com")];
        let outcome = db.store.import_batch(&session, &ImportBatch::new(first.to_vec()), db.clock.now()).await.expect("batch 1");
        assert_eq!((outcome.added, outcome.already_subscribed), (2, 1));
        assert_eq!(outcome.duplicates, vec![5]);

        // A later batch of the same import repeating an address of an earlier batch.
        let second = [row(6, "c@example.com"), row(7, "b@example.com")];
        let outcome = db.store.import_batch(&session, &ImportBatch::new(second.to_vec()), db.clock.now()).await.expect("batch 2");
        assert_eq!((outcome.added, outcome.duplicates), (1, vec![7]));
        assert_eq!(count(&db, Some(SubscriptionStatus::Active)).await, 4);

        // The same rows again, as a new import: nothing changes and nothing is called a duplicate.
        let session = db.store.begin_import(db.list_id).await.expect("begin import");
        let outcome = db.store.import_batch(&session, &ImportBatch::new(first.to_vec()), db.clock.now()).await.expect("again");
        assert_eq!((outcome.added, outcome.already_subscribed, outcome.duplicates.len()), (0, 3, 1));
        assert_eq!(count(&db, None).await, 4);
    }

    async fn imported_rows_keep_names_attributes_and_time_zones(db) {
        let mut imported = row(2, "zoe@example.org");
        imported.attributes = r#"{"city":"Lyon"}"#.to_owned();
        imported.time_zone = Some("Europe/Paris".to_owned());
        let session = db.store.begin_import(db.list_id).await.expect("begin import");
        db.store.import_batch(&session, &ImportBatch::new(vec![imported]), db.clock.now()).await.expect("import");
        let (person, subscriptions) = db.store.find_subscriber(&email("zoe@example.org")).await.expect("find").expect("found");
        assert_eq!((person.name.as_str(), person.attributes.as_str()), ("Person 2", r#"{"city":"Lyon"}"#));
        assert_eq!(person.time_zone.as_deref(), Some("Europe/Paris"));
        assert_eq!(subscriptions.len(), 1);
        assert_eq!((subscriptions[0].status.as_str(), subscriptions[0].source.as_str()), ("active", "import"));
        assert_eq!(subscriptions[0].consent_at, Some(db.clock.now().as_millisecond()));
    }

    async fn erasing_deletes_personal_data_and_keeps_the_address_suppressed(db) {
        add(&db, "gone@example.com").await;
        let outcome = db.store.erase_subscriber(&email("gone@example.com"), db.clock.now()).await.expect("erase");
        assert!(outcome.erased);
        assert!(db.store.find_subscriber(&email("gone@example.com")).await.expect("find").is_none());
        assert_eq!(count(&db, None).await, 0);
        assert_eq!(db.store.suppression_of(&email("Gone@example.com")).await.expect("q"), Some(SuppressionReason::Erased));

        // Nothing readable of the address stays in the database.
        let stored: Vec<(String,)> = match &db.store {
            tidings::store::Store::Sqlite(p) => sqlx::query_as("SELECT email_hash FROM suppressions").fetch_all(p).await.expect("q"),
            tidings::store::Store::Postgres(p) => sqlx::query_as("SELECT email_hash FROM suppressions").fetch_all(p).await.expect("q"),
        };
        assert_eq!(stored.len(), 1);
        assert!(!stored[0].0.contains("gone"));

        // Neither add nor import brings the address back.
        assert_eq!(add(&db, "gone@example.com").await, AddOutcome::Suppressed(SuppressionReason::Erased));
        let session = db.store.begin_import(db.list_id).await.expect("begin import");
        let outcome = db.store.import_batch(&session, &ImportBatch::new(vec![row(9, "gone@example.com")]), db.clock.now()).await.expect("import");
        assert_eq!(outcome.suppressed, vec![(9, SuppressionReason::Erased)]);
        assert_eq!(count(&db, None).await, 0);
    }

    async fn removing_deletes_the_subscriber_but_allows_adding_them_again(db) {
        add(&db, "ana@example.com").await;
        assert_eq!(db.store.remove_subscriber(&email("ana@example.com"), None).await.expect("remove"), Some(1));
        assert_eq!(db.store.remove_subscriber(&email("ana@example.com"), None).await.expect("again"), None);
        assert!(matches!(add(&db, "ana@example.com").await, AddOutcome::Added { .. }));
    }

    async fn listing_pages_through_subscriptions_in_id_order(db) {
        let rows: Vec<ImportRow> = (0..25).map(|i| row(i + 2, &format!("p{i}@example.net"))).collect();
        let session = db.store.begin_import(db.list_id).await.expect("begin import");
        db.store.import_batch(&session, &ImportBatch::new(rows), db.clock.now()).await.expect("import");
        let filter = SubscriberFilter { list_id: Some(db.list_id), status: Some(SubscriptionStatus::Active) };
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = db.store.list_subscribers(filter, after.clone(), 10).await.expect("page");
            let Some(last) = page.last() else { break };
            after = Some((last.id, last.list.clone()));
            seen.extend(page.into_iter().map(|r| r.email));
        }
        assert_eq!(seen.len(), 25);
        assert_eq!(seen[0], "p0@example.net");
        assert_eq!(seen[24], "p24@example.net");
        let counts = db.store.status_counts(Some(db.list_id)).await.expect("counts");
        assert_eq!(counts.len(), 1);
        assert_eq!((counts[0].status.as_str(), counts[0].count), ("active", 25));
    }
}
