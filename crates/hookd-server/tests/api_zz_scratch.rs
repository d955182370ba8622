mod common;
use common::TestServer;
use serde_json::json;

#[tokio::test]
async fn probe() {
    let srv = TestServer::start().await;
    let a = srv.app("a").await;
    let b = srv.app("b").await;
    println!(
        "patch uid dup: {:?}",
        srv.call("PATCH", &format!("/app/{b}"), Some(json!({"uid":"a"})))
            .await
    );
    println!(
        "put uid dup: {:?}",
        srv.call(
            "PUT",
            &format!("/app/{b}"),
            Some(json!({"name":"x","uid":"a"}))
        )
        .await
    );
    srv.endpoint(&a, json!({"url":"https://e.com/1","uid":"e1"}))
        .await;
    srv.endpoint(&a, json!({"url":"https://e.com/2","uid":"e2"}))
        .await;
    println!(
        "ep patch uid dup: {:?}",
        srv.call(
            "PATCH",
            &format!("/app/{a}/endpoint/e2"),
            Some(json!({"uid":"e1"}))
        )
        .await
    );
    println!(
        "throttle 0: {:?}",
        srv.post(
            &format!("/app/{a}/endpoint"),
            json!({"url":"https://e.com","throttleRate":0})
        )
        .await
    );
    println!(
        "metadata nonstring: {:?}",
        srv.post("/app", json!({"name":"m","metadata":{"k":1}}))
            .await
    );
    println!(
        "header newline: {:?}",
        srv.post(
            &format!("/app/{a}/endpoint"),
            json!({"url":"https://e.com","headers":{"X-A":"a\nb"}})
        )
        .await
    );
    println!(
        "evtype bad: {:?}",
        srv.post(
            &format!("/app/{a}/msg"),
            json!({"eventType":"bad type","payload":{}})
        )
        .await
    );
    println!("iter garbage: {:?}", srv.get("/app?iterator=garbage").await);
    println!("dup query: {:?}", srv.get("/app?limit=1&limit=2").await);
    println!(
        "name empty: {:?}",
        srv.post("/app", json!({"name":""})).await
    );
    println!(
        "ep desc empty? {:?}",
        srv.get(&format!("/app/{a}/endpoint")).await.1["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["uid"].clone())
            .collect::<Vec<_>>()
    );
    for i in 0..5 {
        srv.send(&a, "x.y", json!({"i": i})).await;
    }
    let (_, l) = srv.get(&format!("/app/{a}/msg?limit=2")).await;
    println!("msgs page1: {}", l);
    let it = l["iterator"].as_str().unwrap();
    let (_, l2) = srv
        .get(&format!("/app/{a}/msg?limit=2&iterator={it}"))
        .await;
    println!("msgs page2: {}", l2);
    println!(
        "delete app: {:?}",
        srv.call("DELETE", &format!("/app/{a}"), None).await
    );
    println!(
        "ep after app delete: {:?}",
        srv.get(&format!("/app/{a}/endpoint")).await
    );
    for n in ["b.b", "a.a", "c.c", "d.d"] {
        srv.post("/event-type", json!({"name":n,"description":"d"}))
            .await;
    }
    let (_, l) = srv.get("/event-type?limit=2").await;
    println!("et page1: {}", l);
    let it = l["iterator"].as_str().unwrap();
    println!(
        "et page2: {}",
        srv.get(&format!("/event-type?limit=2&iterator={it}"))
            .await
            .1
    );
    println!(
        "et bad name: {:?}",
        srv.post("/event-type", json!({"name":"bad name","description":"d"}))
            .await
    );
    println!(
        "et put: {:?}",
        srv.call(
            "PUT",
            "/event-type/new.one",
            Some(json!({"description":"d"}))
        )
        .await
        .0
    );
    println!(
        "portal expiry bad: {:?}",
        srv.post(
            &format!("/auth/app-portal-access/{b}"),
            json!({"expiry": 0})
        )
        .await
    );
    println!(
        "portal creates app: {:?}",
        srv.post(
            "/auth/app-portal-access/newapp",
            json!({"application":{"name":"N"}})
        )
        .await
        .0
    );
    println!("newapp: {:?}", srv.get("/app/newapp").await.0);
    println!(
        "msg with app existing id path: {:?}",
        srv.post(
            &format!("/app/{b}/msg"),
            json!({"eventType":"a.b","payload":{},"application":{"name":"zz","uid":"zz"}})
        )
        .await
        .0
    );
    println!(
        "msg create app no uid: {:?}",
        srv.post(
            "/app/fresh/msg",
            json!({"eventType":"a.b","payload":{},"application":{"name":"zz"}})
        )
        .await
    );
    println!(
        "app list exclude: {:?}",
        srv.get("/app?exclude_apps_with_no_endpoints=true").await.1["data"]
            .as_array()
            .map(|a| a.len())
    );
    println!(
        "logout admin: {:?}",
        srv.call("POST", "/auth/logout", None).await
    );
}
