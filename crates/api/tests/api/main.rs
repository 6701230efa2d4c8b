//! The API's tests, over real HTTP against a real nats-server and both read-model databases.

mod support;

mod accounts;
mod audit;
mod closed_loop;
mod markers;
mod matrix;
mod oidc;
mod openapi;
mod semantics;

/// Runs `$scenario(db: TestDb)` as two tests, `sqlite` and `postgres`, in a module `$name`.
#[macro_export]
macro_rules! on_both {
    ($name:ident, $scenario:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::support::TestDb::sqlite();
                super::$scenario(db).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(db) = $crate::support::TestDb::postgres().await else {
                    return;
                };
                super::$scenario(db).await;
            }
        }
    };
}
