//! `tidings subscriber import` through the binary, on both backends: bad rows are named by line and reason,
//! good rows are kept, the exit status is 1, and importing again adds nothing.

use tidings::domain::SubscriptionStatus;
use tidings::store::SubscriberFilter;

use crate::both_backends;
use crate::helpers::TestDatabase;

/// A CSV with a header and 1,000 rows, ten of them bad; returns the text and the bad rows' line numbers.
fn csv_with_ten_bad_rows() -> (String, Vec<u64>) {
    let mut csv = String::from("email,name,city\r\n");
    let mut bad = Vec::new();
    for i in 1..=1000u64 {
        let line = i + 1;
        let row = match i {
            100 => "not-an-address,Broken Address,Oslo".to_owned(),
            200 => ",Empty Email,Oslo".to_owned(),
            300 => "person1@example.org,Duplicate Of Row 1,Oslo".to_owned(),
            400 => "\"quote@example.com,Broken Quoting,Oslo".to_owned(),
            500 => "crlf@example.com,\"Line\r\nBreak\",Oslo".to_owned(),
            600 => "two@@example.com,Double At,Oslo".to_owned(),
            700 => "space in@example.com,Space,Oslo".to_owned(),
            800 => "extra@example.com,Extra,Oslo,Field".to_owned(),
            900 => "nodomain@,No Domain,Oslo".to_owned(),
            1000 => "person3@EXAMPLE.com,Duplicate Of Row 3 By Domain Case,Oslo".to_owned(),
            _ => format!("person{i}@example.{},Person {i},\"Oslo, Norway\"", ["com", "org", "net"][i as usize % 3]),
        };
        if [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000].contains(&i) {
            bad.push(line);
        }
        csv.push_str(&row);
        csv.push_str("\r\n");
    }
    (csv, bad)
}

async fn active(db: &TestDatabase) -> usize {
    let filter = SubscriberFilter { list_id: Some(db.list_id), status: Some(SubscriptionStatus::Active) };
    db.store.list_subscribers(filter, None, 10_000).await.expect("list").len()
}

/// The line numbers the report names, from stderr lines `line N: reason`.
fn reported_lines(stderr: &str) -> Vec<u64> {
    stderr.lines().filter_map(|l| l.strip_prefix("line ")?.split(':').next()?.parse().ok()).collect()
}

both_backends! {
    async fn a_csv_with_ten_bad_rows_imports_the_rest_and_names_each_bad_row(db) {
        let (csv, bad) = csv_with_ten_bad_rows();
        let path = db.write_file("subscribers.csv", csv.as_bytes());

        let run = db.tidings(&["subscriber", "import", path.to_str().expect("utf-8 path")]);

        assert_eq!(run.code, Some(1), "stdout: {}\nstderr: {}", run.stdout, run.stderr);
        // The row with a line break runs over two physical lines; every later row is one line further down.
        let expected: Vec<u64> = bad.iter().map(|&line| if line > 501 { line + 1 } else { line }).collect();
        assert_eq!(reported_lines(&run.stderr), expected, "{}", run.stderr);
        for reason in ["no `@`", "empty", "earlier in the file", "not closed", "line break", "4 fields"] {
            assert!(run.stderr.contains(reason), "missing `{reason}` in:\n{}", run.stderr);
        }
        assert!(run.stdout.contains("990 added, 0 already subscribed, 10 refused"), "{}", run.stdout);
        assert_eq!(active(&db).await, 990);

        let again = db.tidings(&["subscriber", "import", path.to_str().expect("utf-8 path")]);
        assert_eq!(again.code, Some(1), "{}", again.stderr);
        assert!(again.stdout.contains("0 added, 990 already subscribed"), "{}", again.stdout);
        assert_eq!(active(&db).await, 990);
    }

    async fn the_sample_subscribers_import_cleanly(db) {
        let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/emails/samples/subscribers.csv");
        let run = db.tidings(&["subscriber", "import", sample]);
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        let added: usize = run.stdout.split(" added").next().and_then(|s| s.rsplit(' ').next()).and_then(|n| n.parse().ok()).expect("count");
        assert!((45..=60).contains(&added), "{}", run.stdout);
        assert_eq!(active(&db).await, added);
    }

    async fn an_export_imports_again_into_the_same_subscribers(db) {
        let path = db.write_file("in.csv", b"email,name,tz,city\nana@example.com,Ana,Europe/Lisbon,Porto\nbo@example.org,Bo,,\n");
        assert_eq!(db.tidings(&["subscriber", "import", path.to_str().expect("path")]).code, Some(0));
        let export = db.dir.path().join("out.csv");
        let run = db.tidings(&["subscriber", "export", "--out", export.to_str().expect("path")]);
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        let exported = std::fs::read_to_string(&export).expect("read export");
        assert!(exported.starts_with(
            "email,name,tz,list,status,source,created_at,consent_at,request_ip,request_user_agent,confirm_ip,\
             confirm_user_agent,unsubscribed_at,city\n"
        ), "{exported}");
        assert!(exported.contains("ana@example.com,Ana,Europe/Lisbon,weekly,active,import,"), "{exported}");

        let fresh = TestDatabase::new(db.backend).await;
        let run = fresh.tidings(&["subscriber", "import", export.to_str().expect("path")]);
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        let shown = fresh.tidings(&["subscriber", "show", "ana@example.com", "--json"]);
        let value: serde_json::Value = serde_json::from_str(&shown.stdout).expect("json");
        assert_eq!(value["attributes"], serde_json::json!({"city": "Porto"}));
        assert_eq!(value["time_zone"], "Europe/Lisbon");
    }

    async fn add_show_list_remove_and_erase_work_from_the_command_line(db) {
        let added = db.tidings(&["subscriber", "add", " Ana@Example.COM ", "--name", "Ana Lima"]);
        assert_eq!(added.code, Some(0), "{}", added.stderr);
        assert!(added.stdout.contains("added Ana@example.com to `weekly` (active)"), "{}", added.stdout);

        let bad = db.tidings(&["subscriber", "add", "ana.example.com"]);
        assert_eq!(bad.code, Some(1));
        assert!(bad.stderr.contains("has no `@`"), "{}", bad.stderr);

        let listed = db.tidings(&["subscriber", "list", "--json"]);
        let value: serde_json::Value = serde_json::from_str(&listed.stdout).expect("json array");
        assert_eq!(value[0]["email"], "Ana@example.com");
        assert_eq!(value[0]["name"], "Ana Lima");

        let shown = db.tidings(&["subscriber", "show", "Ana@example.com"]);
        assert!(shown.stdout.contains("list `weekly`: active (source cli"), "{}", shown.stdout);

        let erased = db.tidings(&["subscriber", "erase", "Ana@example.com"]);
        assert_eq!(erased.code, Some(0), "{}", erased.stderr);
        let again = db.tidings(&["subscriber", "add", "Ana@example.com"]);
        assert_eq!(again.code, Some(1));
        assert!(again.stderr.contains("suppression list (erased)"), "{}", again.stderr);
        let missing = db.tidings(&["subscriber", "remove", "nobody@example.com"]);
        assert_eq!(missing.code, Some(1));
        assert!(missing.stderr.contains("no subscriber with the address nobody@example.com"), "{}", missing.stderr);
    }
}

#[tokio::test]
async fn a_file_without_an_email_column_is_refused_before_anything_is_written() {
    let db = TestDatabase::sqlite().await;
    let path = db.write_file("bad.csv", b"mail,name\nana@example.com,Ana\n");
    let run = db.tidings(&["subscriber", "import", path.to_str().expect("path")]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("no `email` column") && run.stderr.contains("bad.csv"), "{}", run.stderr);
    assert_eq!(active(&db).await, 0);
}
