use std::sync::Arc;

use diesel::prelude::*;
use weapp::crypto::{
    BlindIndexer, FieldCrypto, KeyRing, OVERHEAD, Sealed, SealedColumn, SealedColumnInfo,
    normalize_phone, rotate_keys,
};
use weapp::db::{Backend, Db, Migration, MigrationSet};
use weapp::diesel_async::RunQueryDsl;
use weapp::testing::TestDatabase;
use weapp::with_conn;
use zeroize::Zeroizing;

diesel::table! {
    people (id) {
        id -> BigInt,
        phone -> Binary,
        phone_index -> Binary,
        note -> Nullable<Binary>,
        lucky_number -> Binary,
        avatar -> Binary,
    }
}

weapp::sealed_column!(PeoplePhone => "people"."phone");
weapp::sealed_column!(PeopleNote => "people"."note");
weapp::sealed_column!(PeopleNumber => "people"."lucky_number");
weapp::sealed_column!(PeopleAvatar => "people"."avatar");

#[derive(Debug, Queryable, Insertable, Selectable, PartialEq)]
#[diesel(table_name = people)]
struct Person {
    id: i64,
    phone: Sealed<String, PeoplePhone>,
    phone_index: Vec<u8>,
    note: Option<Sealed<String, PeopleNote>>,
    lucky_number: Sealed<i64, PeopleNumber>,
    avatar: Sealed<Vec<u8>, PeopleAvatar>,
}

const PEOPLE: &[Migration] = &[Migration {
    version: "0001_people",
    postgres: "CREATE TABLE people (id BIGINT PRIMARY KEY, phone BYTEA NOT NULL, \
        phone_index BYTEA NOT NULL, note BYTEA, lucky_number BYTEA NOT NULL, avatar BYTEA NOT NULL); \
        CREATE UNIQUE INDEX people_phone_index ON people (phone_index);",
    mysql: "CREATE TABLE people (id BIGINT PRIMARY KEY, phone VARBINARY(255) NOT NULL, \
        phone_index BINARY(32) NOT NULL, note VARBINARY(1024), lucky_number VARBINARY(64) NOT NULL, \
        avatar BLOB NOT NULL); CREATE UNIQUE INDEX people_phone_index ON people (phone_index);",
    sqlite: "CREATE TABLE people (id BIGINT PRIMARY KEY, phone BLOB NOT NULL, \
        phone_index BLOB NOT NULL, note BLOB, lucky_number BLOB NOT NULL, avatar BLOB NOT NULL); \
        CREATE UNIQUE INDEX people_phone_index ON people (phone_index);",
}];

fn crypto(keys: &[(u16, u8, usize)], active: u16) -> Arc<FieldCrypto> {
    let ring = KeyRing::new(
        keys.iter()
            .map(|(id, b, len)| (*id, Zeroizing::new(vec![*b; *len])))
            .collect(),
        active,
    )
    .unwrap();
    Arc::new(FieldCrypto::new(
        ring,
        BlindIndexer::new(&[9u8; 32]).unwrap(),
    ))
}

fn person(crypto: &FieldCrypto, id: i64, phone: &str) -> Person {
    Person {
        id,
        phone: Sealed::seal(crypto, &phone.to_owned()),
        phone_index: crypto
            .blind_index(&PeoplePhone::CONTEXT, &normalize_phone(phone))
            .to_vec(),
        note: (id % 2 == 0).then(|| Sealed::seal(crypto, &format!("备注 {id}"))),
        lucky_number: Sealed::seal(crypto, &(-7 * id)),
        avatar: Sealed::seal(crypto, &vec![0, 1, 2, 255, id as u8]),
    }
}

async fn load_people(db: &Db) -> Vec<Person> {
    let mut conn = db.conn().await.unwrap();
    with_conn!(conn, |c| {
        people::table
            .select(Person::as_select())
            .order(people::id)
            .load(c)
            .await
    })
    .unwrap()
}

async fn migrated(backend: Backend) -> (TestDatabase, Db) {
    let test_db = TestDatabase::create(backend).await;
    let db = Db::connect(&weapp::db::DatabaseConfig {
        url: weapp::config::ConnectionUrl::new(test_db.url()),
        ..Default::default()
    })
    .unwrap();
    db.migrate(&[MigrationSet {
        owner: "people",
        migrations: PEOPLE,
    }])
    .await
    .unwrap();
    (test_db, db)
}

/// Round trip of every sealed type, ciphertext at rest, lookup by blind index,
/// a value copied to another column refused, then key rotation.
async fn sealed_columns_on(backend: Backend) {
    let v1 = crypto(&[(1, 0x11, 16)], 1);
    let (_test_db, db) = migrated(backend).await;
    let mut conn = db.conn().await.unwrap();

    let people: Vec<Person> = (1..=5)
        .map(|i| person(&v1, i, &format!("1381234800{i}")))
        .collect();
    // One statement per row: SQLite cannot batch-insert rows with optional columns.
    for p in &people {
        with_conn!(conn, |c| diesel::insert_into(people::table)
            .values(p)
            .execute(c)
            .await)
        .unwrap();
    }

    let loaded = load_people(&db).await;
    assert_eq!(loaded, people);
    assert_eq!(
        loaded[1].note.as_ref().unwrap().open(&v1).unwrap(),
        "备注 2"
    );
    assert_eq!(loaded[2].lucky_number.open(&v1).unwrap(), -21);
    assert_eq!(loaded[3].avatar.open(&v1).unwrap(), [0, 1, 2, 255, 4]);
    // Another app's key ring opens nothing of this one's.
    let other = crypto(&[(1, 0x99, 16)], 1);
    assert!(loaded[0].phone.open(&other).is_err());

    // At rest: ciphertext bound to its column, never the plaintext.
    let raw: Vec<u8> = with_conn!(conn, |c| {
        people::table
            .filter(people::id.eq(1))
            .select(people::phone)
            .first(c)
            .await
    })
    .unwrap();
    assert_eq!(raw.len(), "13812348001".len() + OVERHEAD);
    assert!(!raw.windows(11).any(|w| w == b"13812348001"));

    // Lookup by blind index of a differently written number.
    let index = v1.blind_index(&PeoplePhone::CONTEXT, &normalize_phone("+86 138 1234 8003"));
    let found: Person = with_conn!(conn, |c| {
        people::table
            .filter(people::phone_index.eq(index.to_vec()))
            .select(Person::as_select())
            .first(c)
            .await
    })
    .unwrap();
    assert_eq!(found.id, 3);

    // A value copied into another column does not decrypt there.
    with_conn!(conn, |c| {
        diesel::update(people::table.filter(people::id.eq(2)))
            .set(people::note.eq(people::phone.nullable()))
            .execute(c)
            .await
    })
    .unwrap();
    let copied = with_conn!(conn, |c| {
        people::table
            .filter(people::id.eq(2))
            .select(Person::as_select())
            .first::<Person>(c)
            .await
    })
    .unwrap();
    assert!(
        copied.note.unwrap().open(&v1).is_err(),
        "copied ciphertext must not open in another column"
    );
    with_conn!(conn, |c| diesel::delete(
        people::table.filter(people::id.eq(2))
    )
    .execute(c)
    .await)
    .unwrap();

    // Rotation to a new AES-256-GCM key, in batches of 2, resumable.
    let v2 = crypto(&[(1, 0x11, 16), (2, 0x22, 32)], 2);
    let columns = [
        SealedColumnInfo {
            context: PeoplePhone::CONTEXT,
            id_column: "id",
        },
        SealedColumnInfo {
            context: PeopleNote::CONTEXT,
            id_column: "id",
        },
    ];
    let report = rotate_keys(&db, &v2, &columns, 2).await.unwrap();
    assert_eq!(report.scanned, 8);
    assert_eq!(report.rotated, 5, "4 phones and the 1 remaining note");
    assert_eq!(report.current, 3, "NULL notes");
    assert_eq!((report.failed, report.raced), (0, 0));
    let again = rotate_keys(&db, &v2, &columns, 2).await.unwrap();
    assert_eq!(again.rotated, 0);
    assert_eq!(again.current, 8);

    let phones: Vec<Vec<u8>> = with_conn!(conn, |c| {
        people::table
            .select(people::phone)
            .order(people::id)
            .load(c)
            .await
    })
    .unwrap();
    assert!(phones.iter().all(|p| KeyRing::key_id_of(p).unwrap() == 2));
    let reloaded = load_people(&db).await;
    assert_eq!(reloaded.len(), 4);
    assert_eq!(reloaded[0].phone.open(&v2).unwrap(), "13812348001");
    assert_eq!(
        reloaded[2].note.as_ref().unwrap().open(&v2).unwrap(),
        "备注 4"
    );
    assert!(
        reloaded[0].phone.open(&v1).is_err(),
        "the old ring lacks the new key"
    );

    // A value no key can open is counted, not fatal.
    with_conn!(conn, |c| {
        diesel::update(people::table.filter(people::id.eq(5)))
            .set(people::phone.eq(vec![
                1u8, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                0, 0, 0, 0, 0,
            ]))
            .execute(c)
            .await
    })
    .unwrap();
    let v3 = crypto(&[(1, 0x11, 16), (2, 0x22, 32), (3, 0x33, 16)], 3);
    let report = rotate_keys(&db, &v3, &columns[..1], 500).await.unwrap();
    assert_eq!((report.rotated, report.failed), (3, 1));
}

#[tokio::test]
async fn sealed_columns_on_postgres() {
    sealed_columns_on(Backend::Postgres).await;
}

#[tokio::test]
async fn sealed_columns_on_mariadb() {
    sealed_columns_on(Backend::Mysql).await;
}

#[tokio::test]
async fn sealed_columns_on_sqlite() {
    sealed_columns_on(Backend::Sqlite).await;
}

#[test]
fn sealed_debug_never_prints_the_value() {
    let crypto = crypto(&[(1, 0x11, 16)], 1);
    let phone: Sealed<String, PeoplePhone> = Sealed::seal(&crypto, &"13812348000".into());
    assert_eq!(format!("{phone:?}"), "***");
}
