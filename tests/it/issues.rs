//! `tidings issue add | list | show | preview` through the binary, on both backends: a broken issue file or
//! template is reported with its file and place and nothing is stored; re-adding is a no-op; a draft is
//! updated; an issue past the draft stage is never changed.

use std::path::{Path, PathBuf};

use tidings::store::Store;

use crate::both_backends;
use crate::helpers::TestDatabase;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/emails/issues/122.md");

fn sample_text() -> String {
    std::fs::read_to_string(SAMPLE).expect("read the sample issue")
}

/// A copy of the built-in templates in the test's folder, with `file` replaced by `content`.
fn templates_with(db: &TestDatabase, file: &str, content: &str) -> PathBuf {
    let dir = db.dir.path().join("templates");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("emails/templates"), &dir);
    std::fs::write(dir.join(file), content).expect("write template");
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create folder");
    for entry in std::fs::read_dir(from).expect("read folder") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

fn issue_count(db: &TestDatabase) -> usize {
    let run = db.tidings(&["issue", "list", "--json"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    serde_json::from_str::<Vec<serde_json::Value>>(&run.stdout).expect("json").len()
}

/// Runs `issue add` on `file` with extra environment and checks it failed with one line naming every needle.
fn assert_refused(db: &TestDatabase, file: &Path, env: &[(&str, &str)], needles: &[&str]) {
    let mut all = vec![("TIDINGS_DATABASE__URL", db.url.as_str())];
    all.extend_from_slice(env);
    let run = crate::helpers::tidings_with_env(&["issue", "add", file.to_str().expect("path")], &all, db.dir.path());
    assert_eq!(run.code, Some(1), "stdout {} stderr {}", run.stdout, run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    for needle in needles {
        assert!(run.stderr.contains(needle), "`{needle}` missing from: {}", run.stderr);
    }
    assert_eq!(issue_count(db), 0, "nothing may be stored");
}

both_backends! {
    async fn adding_the_sample_stores_a_draft_and_adding_it_again_changes_nothing(db) {
        let run = db.tidings(&["issue", "add", SAMPLE]);
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        assert!(run.stdout.contains("added issue 122 to `weekly` as a draft"), "{}", run.stdout);
        let again = db.tidings(&["issue", "add", SAMPLE]);
        assert!(again.stdout.contains("issue 122 is unchanged"), "{}", again.stdout);

        let listed: Vec<serde_json::Value> = serde_json::from_str(&db.tidings(&["issue", "list", "--json"]).stdout).expect("json");
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0]["number"].as_i64(), listed[0]["status"].as_str()), (Some(122), Some("draft")));
        let shown: serde_json::Value = serde_json::from_str(&db.tidings(&["issue", "show", "122", "--json"]).stdout).expect("json");
        assert_eq!(shown["links"].as_array().expect("links").len(), 9);
        assert!(shown["html_bytes"].as_u64().expect("size") < 102 * 1024);
    }

    async fn a_changed_draft_is_updated_and_a_sent_issue_is_never_changed(db) {
        assert_eq!(db.tidings(&["issue", "add", SAMPLE]).code, Some(0));
        let edited = db.write_file("122.md", sample_text().replace("No more tax-free?", "No more tax holidays?").as_bytes());
        let run = db.tidings(&["issue", "add", edited.to_str().expect("path")]);
        assert!(run.stdout.contains("updated draft issue 122"), "{}", run.stdout);
        let preview = db.tidings(&["issue", "preview", "122", "--out", db.dir.path().join("p").to_str().expect("path")]);
        assert_eq!(preview.code, Some(0));
        let html = std::fs::read_to_string(db.dir.path().join("p/122.html")).expect("preview");
        assert!(html.contains("No more tax holidays?"));

        let sql = "UPDATE issues SET status = 'sent' WHERE number = 122";
        match &db.store {
            Store::Sqlite(pool) => { sqlx::query(sql).execute(pool).await.expect("mark sent"); }
            Store::Postgres(pool) => { sqlx::query(sql).execute(pool).await.expect("mark sent"); }
        }
        let refused = db.tidings(&["issue", "add", SAMPLE]);
        assert_eq!(refused.code, Some(1));
        assert!(refused.stderr.contains("issue 122 is sent and can no longer be changed"), "{}", refused.stderr);
        let html = std::fs::read_to_string(db.dir.path().join("p/122.html")).expect("preview");
        assert!(html.contains("No more tax holidays?"));
    }

    async fn a_front_matter_error_names_the_file_line_and_column_and_stores_nothing(db) {
        let broken = db.write_file("broken.md", sample_text().replacen("number = 122", "number = = 122", 1).as_bytes());
        assert_refused(&db, &broken, &[], &["broken.md:2:"]);
        let unknown = db.write_file("unknown.md", sample_text().replacen("period =", "perod =", 1).as_bytes());
        assert_refused(&db, &unknown, &[], &["unknown.md:5", "perod"]);
    }

    async fn an_unknown_template_variable_names_the_template_and_stores_nothing(db) {
        let item = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("emails/templates/partials/item.mjml")).expect("item");
        let dir = templates_with(&db, "partials/item.mjml", &item.replacen("item.heading", "item.headline", 1));
        let env = [("TIDINGS_RENDER__TEMPLATES_DIR", dir.to_str().expect("path"))];
        assert_refused(&db, Path::new(SAMPLE), &env, &["partials/item.mjml", "item.headline"]);
    }

    async fn an_mjml_error_names_the_template_and_stores_nothing(db) {
        let digest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("emails/templates/digest.mjml")).expect("digest");
        let dir = templates_with(&db, "digest.mjml", &digest.replacen("</mj-body>", "", 1));
        let env = [("TIDINGS_RENDER__TEMPLATES_DIR", dir.to_str().expect("path"))];
        assert_refused(&db, Path::new(SAMPLE), &env, &["digest.mjml"]);
    }
}

#[tokio::test]
async fn an_issue_that_does_not_exist_is_named() {
    let db = TestDatabase::sqlite().await;
    let run = db.tidings(&["issue", "preview", "7"]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("there is no issue 7 on `weekly`"), "{}", run.stderr);
}
