//! Types the connection learns from the catalog, against a real server: derived
//! `FromSql`/`ToSql` for enums, composites and domains, arrays of them, and
//! [`Value`] for columns whose type is only known at run time.

mod support;

use std::ops::Bound;

use std::net::IpAddr;

use ferropg::types::{FromSql, Geometry, Inet, Interval, Kind, Multirange, Range, ToSql, Value};
use ferropg::Connection;

async fn connect() -> Connection {
    ferropg::connect(&support::shared_config())
        .await
        .expect("connect")
}

#[derive(Debug, Clone, PartialEq, ToSql, FromSql)]
#[postgres(name = "rs_mood")]
enum Mood {
    #[postgres(name = "sad")]
    Sad,
    #[postgres(name = "ok")]
    Ok,
    #[postgres(name = "happy")]
    Happy,
}

#[derive(Debug, Clone, PartialEq, ToSql, FromSql)]
#[postgres(name = "rs_item")]
struct Item {
    id: i32,
    label: Option<String>,
    mood: Mood,
    tags: Vec<String>,
}

async fn setup(conn: &mut Connection, schema: &str) {
    conn.batch_execute(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};
         SET search_path = {schema}, public;
         CREATE TYPE rs_mood AS ENUM ('sad', 'ok', 'happy');
         CREATE TYPE rs_item AS (id int4, label text, mood rs_mood, tags text[]);
         CREATE DOMAIN rs_positive AS int4 CHECK (VALUE > 0);"
    ))
    .await
    .unwrap();
}

#[tokio::test]
async fn derived_enums_and_composites_round_trip() {
    let mut conn = connect().await;
    setup(&mut conn, "rs_types_a").await;
    let item = Item {
        id: 7,
        label: None,
        mood: Mood::Happy,
        tags: vec!["a".into(), "b c".into()],
    };
    let row = conn
        .query_one("SELECT $1::rs_item", &[&item])
        .await
        .unwrap();
    assert_eq!(row.get::<_, Item>(0), item);
    // Learned types carry their shape, so the column says what it is.
    match row.columns()[0].type_().kind() {
        Kind::Composite(fields) => {
            let names: Vec<&str> = fields.iter().map(|f| f.name()).collect();
            assert_eq!(names, ["id", "label", "mood", "tags"]);
        }
        other => panic!("expected a composite, got {other:?}"),
    }
    // An array of composites and an enum array, from SQL text without parameters
    // (the types are learned after the rows arrive).
    let row = conn
        .query_one(
            "SELECT ARRAY[ROW(1, 'x', 'sad', '{}')::rs_item, ROW(2, NULL, 'ok', '{t}')::rs_item],
                    ARRAY['ok', 'happy']::rs_mood[], 'sad'::rs_mood",
            &[],
        )
        .await
        .unwrap();
    let items: Vec<Item> = row.get(0);
    assert_eq!(items.len(), 2);
    assert_eq!(items[1].mood, Mood::Ok);
    assert_eq!(items[1].tags, vec!["t".to_owned()]);
    assert_eq!(row.get::<_, Vec<Mood>>(1), vec![Mood::Ok, Mood::Happy]);
    assert_eq!(row.get::<_, Mood>(2), Mood::Sad);
    // A domain decodes as its base type; an unknown label is the server's error.
    let v: i32 = conn
        .query_one("SELECT 5::rs_positive", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, 5);
    assert!(conn.query_one("SELECT 'meh'::rs_mood", &[]).await.is_err());
    conn.batch_execute("DROP SCHEMA rs_types_a CASCADE")
        .await
        .unwrap();
}

#[tokio::test]
async fn value_decodes_any_column() {
    let mut conn = connect().await;
    setup(&mut conn, "rs_types_b").await;
    let row = conn
        .query_one(
            "SELECT 1::int2, 2.5::float8, 'x'::text, NULL::int4, '1.50'::numeric,
                    ARRAY[[1, 2], [3, NULL]]::int4[], ROW(3, 'y', 'ok', '{q}')::rs_item,
                    'happy'::rs_mood, 9::rs_positive, '{\"a\": 1}'::jsonb, '\\x0102'::bytea,
                    point(1, 2)",
            &[],
        )
        .await
        .unwrap();
    let values: Vec<Value> = (0..row.len()).map(|i| row.get(i)).collect();
    assert_eq!(values[0], Value::Int(1));
    assert_eq!(values[1], Value::Float(2.5));
    assert_eq!(values[2], Value::Text("x".into()));
    assert_eq!(values[3], Value::Null);
    assert_eq!(values[4], Value::Numeric("1.50".parse().unwrap()));
    assert_eq!(
        values[5],
        Value::Array(vec![
            Value::Int(1),
            Value::Int(2),
            Value::Int(3),
            Value::Null
        ])
    );
    assert_eq!(
        values[6],
        Value::Composite(vec![
            ("id".into(), Value::Int(3)),
            ("label".into(), Value::Text("y".into())),
            ("mood".into(), Value::Text("ok".into())),
            ("tags".into(), Value::Array(vec![Value::Text("q".into())])),
        ])
    );
    assert_eq!(values[7], Value::Text("happy".into()));
    assert_eq!(values[8], Value::Int(9));
    assert_eq!(values[9], Value::Text("{\"a\": 1}".into()));
    assert_eq!(values[10], Value::Bytes(vec![1, 2]));
    assert_eq!(values[11], Value::Geometry(Geometry::Point((1.0, 2.0))));
    // And back: a Value goes to whatever type the parameter has.
    let row = conn
        .query_one(
            "SELECT $1::rs_item = ROW(3, 'y', 'ok', '{q}')::rs_item, $2::int8 + 1, $3::rs_mood",
            &[&values[6], &Value::Int(41), &Value::Text("sad".into())],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0));
    assert_eq!(row.get::<_, i64>(1), 42);
    assert_eq!(row.get::<_, Mood>(2), Mood::Sad);
    assert!(conn
        .query_one("SELECT $1::int4", &[&Value::Text("no".into())])
        .await
        .is_err());
    conn.batch_execute("DROP SCHEMA rs_types_b CASCADE")
        .await
        .unwrap();
}

#[tokio::test]
async fn reload_schema_state_learns_changed_types_again() {
    let mut conn = connect().await;
    setup(&mut conn, "rs_types_c").await;
    let before: Value = conn
        .query_one("SELECT ROW(1, 'a', 'ok', '{}')::rs_item", &[])
        .await
        .unwrap()
        .get(0);
    assert!(matches!(before, Value::Composite(ref f) if f.len() == 4));
    conn.batch_execute("ALTER TYPE rs_item ADD ATTRIBUTE extra int4")
        .await
        .unwrap();
    conn.reload_schema_state();
    let after: Value = conn
        .query_one("SELECT ROW(1, 'a', 'ok', '{}', 5)::rs_item", &[])
        .await
        .unwrap()
        .get(0);
    match after {
        Value::Composite(fields) => {
            assert_eq!(fields.len(), 5);
            assert_eq!(fields[4], ("extra".into(), Value::Int(5)));
        }
        other => panic!("expected a composite, got {other:?}"),
    }
    conn.batch_execute("DROP SCHEMA rs_types_c CASCADE")
        .await
        .unwrap();
}

#[tokio::test]
async fn ranges_of_any_subtype() {
    let mut conn = connect().await;
    let r: Range<i32> = conn
        .query_one("SELECT '[1,9]'::int4range", &[])
        .await
        .unwrap()
        .get(0);
    // The server's canonical form of a discrete range.
    assert_eq!(
        r,
        Range::Bounds {
            lower: Bound::Included(1),
            upper: Bound::Excluded(10)
        }
    );
    let sent = Range::Bounds {
        lower: Bound::Unbounded,
        upper: Bound::Included(5i64),
    };
    let row = conn
        .query_one(
            "SELECT $1::int8range, $1::int8range @> 5::int8, 'empty'::int4range, $2::int4range",
            &[&sent, &Range::<i32>::Empty],
        )
        .await
        .unwrap();
    assert_eq!(
        row.get::<_, Range<i64>>(0),
        Range::Bounds {
            lower: Bound::Unbounded,
            upper: Bound::Excluded(6)
        }
    );
    assert!(row.get::<_, bool>(1));
    assert_eq!(row.get::<_, Range<i32>>(2), Range::Empty);
    assert_eq!(row.get::<_, Range<i32>>(3), Range::Empty);
    // A range type of one's own, learned from the catalog, also through Value.
    conn.batch_execute(
        "DROP TYPE IF EXISTS rs_floatrange; CREATE TYPE rs_floatrange AS RANGE (subtype = float8)",
    )
    .await
    .unwrap();
    let row = conn
        .query_one("SELECT '[1.5,2.5)'::rs_floatrange", &[])
        .await
        .unwrap();
    assert_eq!(
        row.get::<_, Range<f64>>(0),
        Range::Bounds {
            lower: Bound::Included(1.5),
            upper: Bound::Excluded(2.5)
        }
    );
    assert_eq!(
        row.get::<_, Value>(0),
        Value::Range(Box::new(Range::Bounds {
            lower: Bound::Included(Value::Float(1.5)),
            upper: Bound::Excluded(Value::Float(2.5))
        }))
    );
    assert!(conn
        .query_one(
            "SELECT $1::int4range",
            &[&Range::Bounds {
                lower: Bound::Included("x"),
                upper: Bound::Unbounded
            }]
        )
        .await
        .is_err());
    conn.batch_execute("DROP TYPE rs_floatrange").await.unwrap();
}

#[tokio::test]
async fn intervals_networks_and_geometry_round_trip() {
    let mut conn = connect().await;
    let interval = Interval {
        months: 14,
        days: -3,
        microseconds: 4_000_001,
    };
    let v4: IpAddr = "192.168.1.7".parse().unwrap();
    let net = Inet {
        addr: "10.1.0.0".parse().unwrap(),
        prefix: 16,
    };
    let v6 = Inet::host("2001:db8::1".parse().unwrap());
    let shapes = [
        ("point", Geometry::Point((1.5, -2.0)), "'(1.5,-2)'"),
        (
            "line",
            Geometry::Line {
                a: 1.0,
                b: -1.0,
                c: 0.5,
            },
            "'{1,-1,0.5}'",
        ),
        (
            "lseg",
            Geometry::LineSegment((0.0, 0.0), (1.0, 1.0)),
            "'[(0,0),(1,1)]'",
        ),
        (
            "box",
            Geometry::Box((2.0, 3.0), (0.0, 1.0)),
            "'(2,3),(0,1)'",
        ),
        (
            "path",
            Geometry::Path {
                closed: false,
                points: vec![(0.0, 0.0), (1.0, 2.0)],
            },
            "'[(0,0),(1,2)]'",
        ),
        (
            "polygon",
            Geometry::Polygon(vec![(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)]),
            "'((0,0),(1,0),(0,1))'",
        ),
        (
            "circle",
            Geometry::Circle {
                center: (1.0, 1.0),
                radius: 2.5,
            },
            "'<(1,1),2.5>'",
        ),
    ];
    let row = conn
        .query_one(
            "SELECT $1::interval, $1::interval = '1 year 2 mons -3 days 4.000001 seconds',
                    $2::inet, $3::cidr, $3::cidr = '10.1/16'::cidr, $4::inet, '10.0.0.9/8'::inet",
            &[&interval, &Inet::host(v4), &net, &v6],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Interval>(0), interval);
    assert!(row.get::<_, bool>(1));
    assert_eq!(row.get::<_, Inet>(2), Inet::host(v4));
    assert_eq!(row.get::<_, Inet>(3), net);
    assert!(row.get::<_, bool>(4));
    assert_eq!(row.get::<_, Inet>(5), v6);
    // An inet keeps the prefix of its network, which IpAddr alone would drop.
    assert_eq!(
        row.get::<_, Value>(6),
        Value::Inet(Inet {
            addr: "10.0.0.9".parse().unwrap(),
            prefix: 8
        })
    );
    assert_eq!(row.get::<_, Value>(0), Value::Interval(interval));
    for (ty, shape, literal) in &shapes {
        let sql =
            format!("SELECT $1::{ty}, $1::{ty}::text = {literal}::{ty}::text, {literal}::{ty}");
        let row = conn.query_one(sql.as_str(), &[shape]).await.unwrap();
        assert_eq!(&row.get::<_, Geometry>(0), shape, "{ty}");
        assert!(row.get::<_, bool>(1), "{ty}");
        assert_eq!(
            row.get::<_, Value>(2),
            Value::Geometry(shape.clone()),
            "{ty}"
        );
        // A Value goes back as the same shape.
        let back = conn
            .query_one(sql.as_str(), &[&Value::Geometry(shape.clone())])
            .await
            .unwrap();
        assert!(back.get::<_, bool>(1), "{ty}");
    }
    // A shape is not another shape, and a prefix must fit its family.
    assert!(conn
        .query_one("SELECT $1::box", &[&Geometry::Point((0.0, 0.0))])
        .await
        .is_err());
    let too_long = Inet {
        addr: v4,
        prefix: 33,
    };
    assert!(conn
        .query_one("SELECT $1::inet", &[&too_long])
        .await
        .is_err());
    assert!(conn.query_one("SELECT 1", &[]).await.is_ok());
}

#[tokio::test]
async fn multiranges_of_any_range_type() {
    let mut conn = connect().await;
    let version: i32 = conn
        .query_one("SELECT current_setting('server_version_num')::int4", &[])
        .await
        .unwrap()
        .get(0);
    assert!(version >= 140000, "multiranges need PostgreSQL 14");
    let row = conn
        .query_one(
            "SELECT '{[1,3), [5,7]}'::int4multirange, '{}'::int4multirange",
            &[],
        )
        .await
        .unwrap();
    let expected = Multirange(vec![
        Range::Bounds {
            lower: Bound::Included(1),
            upper: Bound::Excluded(3),
        },
        Range::Bounds {
            lower: Bound::Included(5),
            upper: Bound::Excluded(8),
        },
    ]);
    assert_eq!(row.get::<_, Multirange<i32>>(0), expected);
    assert_eq!(row.get::<_, Multirange<i32>>(1), Multirange(vec![]));
    let row = conn
        .query_one(
            "SELECT $1::int4multirange = '{[1,3), [5,8)}', $1::int4multirange",
            &[&expected],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0));
    assert_eq!(row.get::<_, Multirange<i32>>(1), expected);
    // The multirange of a range type of one's own, learned with its range.
    conn.batch_execute(
        "DROP TYPE IF EXISTS rs_mrange; CREATE TYPE rs_mrange AS RANGE (subtype = float8,
         multirange_type_name = rs_mrange_multi)",
    )
    .await
    .unwrap();
    let value: Value = conn
        .query_one("SELECT '{[1.5,2), (3,4]}'::rs_mrange_multi", &[])
        .await
        .unwrap()
        .get(0);
    let ranges = vec![
        Range::Bounds {
            lower: Bound::Included(Value::Float(1.5)),
            upper: Bound::Excluded(Value::Float(2.0)),
        },
        Range::Bounds {
            lower: Bound::Excluded(Value::Float(3.0)),
            upper: Bound::Included(Value::Float(4.0)),
        },
    ];
    assert_eq!(value, Value::Multirange(ranges.clone()));
    let same: bool = conn
        .query_one(
            "SELECT $1::rs_mrange_multi = '{[1.5,2), (3,4]}'",
            &[&Value::Multirange(ranges)],
        )
        .await
        .unwrap()
        .get(0);
    assert!(same);
    conn.batch_execute("DROP TYPE rs_mrange").await.unwrap();
}

#[tokio::test]
async fn streams_and_portals_learn_types_from_sql_text() {
    let mut conn = connect().await;
    setup(&mut conn, "rs_types_d").await;
    let sql = "SELECT ROW(i, 'x', 'happy', '{t}')::rs_item AS item, 'sad'::rs_mood AS mood
               FROM generate_series(1, 3) AS i";
    let expected_item = |i: i32| Item {
        id: i,
        label: Some("x".into()),
        mood: Mood::Happy,
        tags: vec!["t".into()],
    };
    // SQL text without parameters, never run before: the rows come as they arrive.
    let mut stream = conn.query_stream(sql, &[]).await.unwrap();
    let mut n = 0;
    while let Some(row) = stream.next().await {
        let row = row.unwrap();
        n += 1;
        assert_eq!(row.get::<_, Item>(0), expected_item(n));
        assert_eq!(row.get::<_, Mood>(1), Mood::Sad);
    }
    assert_eq!(n, 3);
    drop(stream);
    // The same with the statement cache off: the unnamed statement.
    let mut config = support::shared_config();
    config.statement_cache_size(0);
    let mut uncached = ferropg::connect(&config).await.unwrap();
    uncached
        .batch_execute("SET search_path = rs_types_d, public")
        .await
        .unwrap();
    let mut stream = uncached.query_stream(sql, &[]).await.unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.get::<_, Item>(0), expected_item(1));
    drop(stream);
    // A portal, fetched in steps inside a transaction.
    let mut tx = conn.transaction().await.unwrap();
    let mut portal = tx
        .bind(
            "SELECT ROW(7, NULL, 'ok', '{}')::rs_item, 'ok'::rs_mood",
            &[],
        )
        .await
        .unwrap();
    let rows = portal.fetch(10).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert!(matches!(rows[0].get::<_, Value>(0), Value::Composite(ref f) if f.len() == 4));
    assert_eq!(rows[0].get::<_, Mood>(1), Mood::Ok);
    drop(portal);
    tx.rollback().await.unwrap();
    conn.batch_execute("DROP SCHEMA rs_types_d CASCADE")
        .await
        .unwrap();
}
