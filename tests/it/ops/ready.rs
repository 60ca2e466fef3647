//! `/readyz`: 200 with the database answering and every migration applied, 503 with a migration missing; the
//! relay's circuit is reported either way.

use crate::both_backends;
use crate::web::WebApp;

async fn readyz(app: &WebApp) -> (u16, serde_json::Value) {
    let response = app.get("/readyz").await;
    let code = response.status().as_u16();
    (code, response.json().await.expect("a JSON body"))
}

both_backends! {
    async fn readyz_reports_the_database_the_migrations_and_the_relay_circuit(db) {
        let mut app = WebApp::start(db, 0, &[]).await;
        let (code, body) = readyz(&app).await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(body["status"], "ready");
        assert_eq!(body["database"], "ok");
        assert_eq!(body["migrations"]["pending"], 0);
        assert_eq!(body["relay"]["circuit"], "closed");

        let relay = tidings::startup::relay_name(&app.settings);
        let now = app.db.clock.now();
        app.db.store.trip_circuit(&relay, "421 busy", now, |_| jiff::SignedDuration::from_hours(1)).await.expect("trip");
        let (code, body) = readyz(&app).await;
        assert_eq!(code, 200, "an open circuit leaves the pages working: {body}");
        assert_eq!(body["relay"]["circuit"], "open");

        let forgotten = app.query_i64("SELECT COUNT(*) FROM _sqlx_migrations").await;
        app.query_text("DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)")
            .await;
        let (code, body) = readyz(&app).await;
        assert_eq!(code, 503, "{body}");
        assert_eq!(body["status"], "not ready");
        assert_eq!(body["migrations"]["pending"], 1);
        assert_eq!(body["migrations"]["applied"], forgotten - 1);
        app.stop().await;
    }
}
