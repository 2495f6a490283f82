//! Every input format on small synthetic fixtures, errors on bad input, and MovieLens 100K from
//! ../shared/data reproducing the canonical split counts.

use std::path::{Path, PathBuf};

use tandem_data::read::{
    BadRows, ColumnRef, Columns, CourseSource, DelimitedSource, HmSource, LogSpec, MovielensSource, RowFilter,
    TimeFormat,
};
use tandem_data::{NoProgress, Source, SplitDir, SplitSpec};

fn write(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

/// ../shared/data, or None when TANDEM_SKIP_SHARED_DATA is set; otherwise a missing directory
/// fails the test (it must not pass silently).
fn shared() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if p.join("ml-100k").exists() {
        Some(p)
    } else if std::env::var_os("TANDEM_SKIP_SHARED_DATA").is_some() {
        eprintln!("skipped: ../shared/data not found and TANDEM_SKIP_SHARED_DATA is set");
        None
    } else {
        panic!("{} not found: put the shared data beside the repository or set TANDEM_SKIP_SHARED_DATA=1", p.display())
    }
}

fn csv_spec(path: PathBuf) -> LogSpec {
    LogSpec::new(
        path,
        ",",
        true,
        Columns { user: "user".into(), item: "item".into(), time: Some("time".into()), weight: Some("rating".into()) },
    )
}

#[test]
fn ml100k_classic_layout_with_genre_flags() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "u.data", b"196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t302\t5\t881250950\n");
    let mut item = b"242|Kolya (1996)|24-Jan-1997||http://x|0|0|0|0|0|1".to_vec();
    item.extend(b"|0|0|0|0|0|0|0|0|0|0|0|0|0\n302|L.A. Confidential (1997)|01-Jan-1997||http://y|0|0|0|0|0|0|1|0|0|0|0|0|0|1|0|0|1|0|0\n");
    write(d.path(), "u.item", &item);
    let ds = Source::Movielens(MovielensSource { path: d.path().into(), on_bad_row: BadRows::Error })
        .load(&NoProgress)
        .unwrap();
    assert_eq!(ds.interactions.len(), 3);
    assert_eq!((ds.n_users(), ds.n_items()), (2, 2));
    assert_eq!(ds.interactions.weight, vec![3.0, 3.0, 5.0]);
    assert_eq!(ds.interactions.time[0], 881250949);
    let kolya = &ds.item_info[ds.items.get("242").unwrap() as usize];
    assert_eq!((kolya.title.as_deref(), kolya.year), (Some("Kolya (1996)"), Some(1997)));
    assert_eq!(kolya.genres, vec!["Comedy"]);
    let la = &ds.item_info[ds.items.get("302").unwrap() as usize];
    assert_eq!(la.genres, vec!["Crime", "Mystery", "Thriller"]);
}

#[test]
fn ml1m_dat_files_are_latin1_with_double_colons() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "ratings.dat", b"1::1193::5::978300760\n1::661::3::978302109\n");
    write(d.path(), "movies.dat", b"1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n661::Cit\xe9 des enfants perdus, La (1995)::Adventure|Sci-Fi\n");
    let ds = Source::Movielens(MovielensSource { path: d.path().join("ratings.dat"), on_bad_row: BadRows::Error })
        .load(&NoProgress)
        .unwrap();
    assert_eq!(ds.interactions.len(), 2);
    let cite = &ds.item_info[ds.items.get("661").unwrap() as usize];
    assert_eq!(cite.title.as_deref(), Some("Cité des enfants perdus, La (1995)"));
    assert_eq!(cite.year, Some(1995));
    assert_eq!(cite.genres, vec!["Adventure", "Sci-Fi"]);
}

#[test]
fn ml20m_csv_with_quoted_titles() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "ratings.csv", b"userId,movieId,rating,timestamp\n1,2,3.5,1112486027\n1,29,3.5,1112484676\n");
    write(
        d.path(),
        "movies.csv",
        b"movieId,title,genres\n2,Jumanji (1995),Adventure|Children|Fantasy\n29,\"City of Lost Children, The (Cit\xc3\xa9 des enfants perdus, La) (1995)\",Adventure|Drama\n",
    );
    let ds = Source::Movielens(MovielensSource { path: d.path().into(), on_bad_row: BadRows::Error })
        .load(&NoProgress)
        .unwrap();
    assert_eq!(ds.interactions.weight, vec![3.5, 3.5]);
    let city = &ds.item_info[ds.items.get("29").unwrap() as usize];
    assert_eq!(city.title.as_deref(), Some("City of Lost Children, The (Cité des enfants perdus, La) (1995)"));
    assert_eq!(city.year, Some(1995));
    assert_eq!(city.genres, vec!["Adventure", "Drama"]);
}

#[test]
fn hm_keeps_string_ids_with_leading_zeros() {
    let d = tempfile::tempdir().unwrap();
    let cust = "000058a12d5b43e67d225668fa1f8d618c13dc232df0cad8ffe7ad4a1091e318";
    write(
        d.path(),
        "transactions_train.csv",
        format!("t_dat,customer_id,article_id,price,sales_channel_id\n2018-09-20,{cust},0663713001,0.0508,2\n2018-09-21,{cust},0541518023,0.0304,2\n").as_bytes(),
    );
    write(
        d.path(),
        "articles.csv",
        b"article_id,product_code,prod_name,product_type_name,product_group_name,graphical_appearance_name,colour_group_name,perceived_colour_value_name,department_name,index_name,section_name,garment_group_name\n0663713001,0663713,Atlanta Push Body Harlow,Underwear body,Underwear,Lace,Black,Dark,Casual Lingerie,Lingeries/Tights,Womens Lingerie,Under-, Nightwear\n",
    );
    let ds = Source::Hm(HmSource { path: d.path().into(), on_bad_row: BadRows::Error }).load(&NoProgress).unwrap();
    assert_eq!(ds.users.raw(0), cust);
    assert_eq!(ds.items.raw(0), "0663713001");
    assert_eq!(ds.interactions.time[1] - ds.interactions.time[0], 86_400);
    let a = &ds.item_info[0];
    assert_eq!(a.title.as_deref(), Some("Atlanta Push Body Harlow"));
    assert!(a.attributes.contains(&("colour_group_name".into(), "Black".into())));
}

#[test]
fn course_format_expands_item_lists_in_order() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "train.csv", b"UserId,ItemId\n0,1038 14 7\n1,7\n");
    let ds = Source::Course(CourseSource { path: p }).load(&NoProgress).unwrap();
    assert_eq!(ds.interactions.len(), 4);
    let items: Vec<&str> = ds.interactions.item.iter().map(|&i| ds.items.raw(i)).collect();
    assert_eq!(items, vec!["1038", "14", "7", "7"]);
    assert!(ds.interactions.time[0] < ds.interactions.time[1] && ds.interactions.time[1] < ds.interactions.time[2]);
}

#[test]
fn delimited_log_with_datetime_and_filters() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "retail.csv",
        b"InvoiceNo,StockCode,Quantity,InvoiceDate,CustomerID\n536365,85123A,6,2010-12-01 08:26:00,17850\nC536379,D,-1,2010-12-01 09:41:00,14527\n536380,22961,0,2010-12-01 09:41:00,17809\n536381,22139,1,2010-12-01 09:41:00,\n",
    );
    let mut spec = LogSpec::new(
        p,
        ",",
        true,
        Columns { user: "CustomerID".into(), item: "StockCode".into(), time: Some("InvoiceDate".into()), weight: None },
    );
    spec.time_format = TimeFormat("%Y-%m-%d %H:%M:%S".into());
    let filter = |column: &str| RowFilter {
        column: column.into(),
        min: None,
        max: None,
        not_starts_with: None,
        non_empty: false,
    };
    spec.filters = vec![
        RowFilter { not_starts_with: Some("C".into()), ..filter("InvoiceNo") },
        RowFilter { min: Some(1.0), ..filter("Quantity") },
        RowFilter { non_empty: true, ..filter("CustomerID") },
    ];
    let ds = Source::Delimited(Box::new(DelimitedSource { log: spec, items: None })).load(&NoProgress).unwrap();
    assert_eq!(ds.interactions.len(), 1);
    assert_eq!(ds.interactions.time[0], 1291191960);
    let r = &ds.reports[0];
    assert_eq!((r.rows_read, r.rows_kept), (4, 1));
    assert_eq!(r.filtered.values().sum::<u64>(), 3);
}

fn load_err(content: &[u8], tweak: impl FnOnce(&mut LogSpec)) -> String {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "log.csv", content);
    let mut spec = csv_spec(p);
    tweak(&mut spec);
    let e = Source::Delimited(Box::new(DelimitedSource { log: spec, items: None }))
        .load(&NoProgress)
        .unwrap_err()
        .to_string();
    assert!(e.contains("log.csv"), "names the file: {e}");
    e
}

#[test]
fn short_row_names_file_and_line() {
    let e = load_err(b"user,item,rating,time\n1,2,5,100\n1,3\n", |_| {});
    assert!(e.contains("line 3") && e.contains("expected at least 4 columns, found 2"), "{e}");
}

#[test]
fn non_numeric_rating_names_line_column_and_value() {
    let e = load_err(b"user,item,rating,time\n1,2,five,100\n", |_| {});
    assert!(e.contains("line 2, column 3 (rating)") && e.contains("'five'") && e.contains("a number"), "{e}");
}

#[test]
fn bad_timestamp_names_the_format() {
    let e = load_err(b"user,item,rating,time\n1,2,5,yesterday\n", |_| {});
    assert!(e.contains("line 2, column 4 (time)") && e.contains("'yesterday'"), "{e}");
}

#[test]
fn unknown_column_lists_the_header() {
    let e = load_err(b"user,item,rating,time\n1,2,5,100\n", |s| s.columns.user = ColumnRef::Name("usr".into()));
    assert!(
        e.contains("line 1") && e.contains("no column named 'usr'") && e.contains("user, item, rating, time"),
        "{e}"
    );
}

#[test]
fn empty_file_is_named() {
    let e = load_err(b"", |_| {});
    assert!(e.contains("the file is empty"), "{e}");
}

#[test]
fn unterminated_quote_is_reported_with_its_line() {
    // The csv parser reads to the end of file inside the quote; the row then has too few fields.
    let e = load_err(b"user,item,rating,time\n1,\"2,5,100\n", |_| {});
    assert!(e.contains("line 2"), "{e}");
}

#[test]
fn bad_rows_can_be_skipped_and_are_counted() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "log.csv", b"user,item,rating,time\n1,2,5,100\n1,3\n2,2,x,5\n2,4,1,7\n");
    let mut spec = csv_spec(p);
    spec.on_bad_row = BadRows::Skip;
    let ds = Source::Delimited(Box::new(DelimitedSource { log: spec, items: None })).load(&NoProgress).unwrap();
    assert_eq!(ds.interactions.len(), 2);
    let r = &ds.reports[0];
    assert_eq!(r.skipped.values().sum::<u64>(), 2);
    assert!(r.to_string().contains("skipped"), "{r}");
    assert!(r.first_skipped.as_deref().unwrap().contains("line 3"));
}

#[test]
fn gzip_is_read_transparently() {
    use std::io::Write;
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("log.csv.gz");
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&p).unwrap(), flate2::Compression::fast());
    gz.write_all(b"user,item,rating,time\n1,2,5,100\n").unwrap();
    gz.finish().unwrap();
    let ds = Source::Delimited(Box::new(DelimitedSource { log: csv_spec(p), items: None })).load(&NoProgress).unwrap();
    assert_eq!(ds.interactions.len(), 1);
}

#[test]
fn movielens_100k_recbole_atomic_files() {
    let Some(data) = shared() else { return };
    let ds = Source::Movielens(MovielensSource { path: data.join("ml-100k"), on_bad_row: BadRows::Error })
        .load(&NoProgress)
        .unwrap();
    let s = ds.stats();
    assert_eq!((s.interactions, s.users, s.items), (100_000, 943, 1682));
    let toy = &ds.item_info[ds.items.get("1").unwrap() as usize];
    assert_eq!(toy.title.as_deref(), Some("Toy Story"));
    assert_eq!(toy.year, Some(1995));
    assert_eq!(toy.genres, vec!["Animation", "Children's", "Comedy"]);
    assert!(ds.user_info[ds.users.get("1").unwrap() as usize]
        .attributes
        .contains(&("occupation".into(), "technician".into())));
}

/// Our splits of the raw ratings reproduce the canonical splits' counts (splits/stats.json).
#[test]
fn movielens_100k_splits_reproduce_the_canonical_counts() {
    let Some(data) = shared() else { return };
    let ds = Source::Movielens(MovielensSource { path: data.join("ml-100k"), on_bad_row: BadRows::Error })
        .load(&NoProgress)
        .unwrap();
    let mut positives = ds.interactions.clone();
    positives.retain(|r| r.weight >= 4.0);
    let n = ds.n_users();
    let temporal = SplitSpec::LastN { test: 5, valid: 0, min_train: 1 }.split(&positives, n, &ds.items).unwrap();
    assert_eq!((temporal.train.len(), temporal.test.len()), (50_705, 4_670));
    let ratio = SplitSpec::Ratio { test: 0.1, valid: 0.0, seed: 42 }.split(&positives, n, &ds.items).unwrap();
    assert_eq!((ratio.train.len(), ratio.test.len(), ratio.report.test_users), (50_264, 5_111, 897));
    let loo = SplitSpec::LeaveOneOut.split(&ds.interactions, n, &ds.items).unwrap();
    assert_eq!((loo.train.len(), loo.valid.len(), loo.test.len()), (98_114, 943, 943));

    // And the temporal test rows are exactly the canonical file's.
    let canon = SplitDir::load(&data.join("ml-100k/splits/temporal"), &NoProgress).unwrap();
    let key = |ds: &tandem_data::Dataset, log: &tandem_data::Interactions| {
        let mut v: Vec<(String, String)> =
            log.iter().map(|r| (ds.users.raw(r.user).to_string(), ds.items.raw(r.item).to_string())).collect();
        v.sort();
        v
    };
    assert_eq!(key(&ds, &temporal.test), key(&canon.dataset, &canon.test));
}

#[test]
fn split_dirs_with_negatives() {
    let Some(data) = shared() else { return };
    let sd = SplitDir::load(&data.join("ml-100k/splits/loo"), &NoProgress).unwrap();
    assert_eq!((sd.train.len(), sd.valid.len(), sd.test.len()), (98_114, 943, 943));
    let negs = sd.test_negatives.as_ref().unwrap();
    assert_eq!(negs.len(), 943);
    assert!(negs.iter().all(|(_, n)| n.len() == 100));
    assert!(sd.valid_negatives.is_some());
}

/// Low ratings from the raw file become explicit negatives in the split's indices; none of
/// them is a positive of the split (those are ratings >= 4).
#[test]
fn explicit_negatives_from_the_raw_ratings() {
    let Some(data) = shared() else { return };
    let sd = SplitDir::load(&data.join("ml-100k/splits/temporal"), &NoProgress).unwrap();
    let inter = data.join("ml-100k/ml-100k.inter");
    let low = sd.read_explicit_negatives(&inter, 2.0, &NoProgress).unwrap();
    // ml-100k has 6,110 ratings of 1 and 11,370 of 2; a few name items the split never saw.
    assert!(low.len() > 15_000 && low.len() <= 17_480, "{}", low.len());
    let positives: std::collections::HashSet<(u32, u32)> =
        sd.train.iter().chain(sd.test.iter()).map(|r| (r.user, r.item)).collect();
    assert!(low.iter().all(|p| !positives.contains(p)));
    assert!(sd.read_explicit_negatives(&inter, 0.5, &NoProgress).unwrap().is_empty());
    let e = sd.read_explicit_negatives(&data.join("ml-100k/nothing.inter"), 2.0, &NoProgress).unwrap_err();
    assert!(e.to_string().contains("nothing.inter"), "{e}");
}

#[test]
fn hm_parquet_files_read_as_their_csv_twins() {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Date32Array, Float64Array, RecordBatch, StringArray};
    let d = tempfile::tempdir().unwrap();
    let cust = ["00005", "00005", "0a77"];
    let articles = ["0663713001", "0541518023", "0663713001"];
    let days = [17_794, 17_795, 17_797]; // 2018-09-20, 21, 23
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("t_dat", Arc::new(Date32Array::from(days.to_vec()))),
        ("customer_id", Arc::new(StringArray::from(cust.to_vec()))),
        ("article_id", Arc::new(StringArray::from(articles.to_vec()))),
        ("price", Arc::new(Float64Array::from(vec![0.0508, 0.0304, 0.0508]))),
    ];
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let file = std::fs::File::create(d.path().join("transactions_train.parquet")).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let csv = tempfile::tempdir().unwrap();
    let mut text = String::from("t_dat,customer_id,article_id,price\n");
    for (k, day) in ["2018-09-20", "2018-09-21", "2018-09-23"].iter().enumerate() {
        text += &format!("{day},{},{},0.05\n", cust[k], articles[k]);
    }
    write(csv.path(), "transactions_train.csv", text.as_bytes());
    let load =
        |p: &Path| Source::Hm(HmSource { path: p.into(), on_bad_row: BadRows::Error }).load(&NoProgress).unwrap();
    let (a, b) = (load(d.path()), load(csv.path()));
    assert_eq!(a.interactions, b.interactions);
    assert_eq!((a.users.raw(1), a.items.raw(0)), ("0a77", "0663713001"), "ids stay text, leading zeros kept");
    // Not Parquet inside: a clear error naming the file.
    write(d.path(), "transactions_train.parquet", b"t_dat,customer_id\n");
    let e = Source::Hm(HmSource { path: d.path().into(), on_bad_row: BadRows::Error }).load(&NoProgress).unwrap_err();
    let e = e.to_string();
    assert!(e.contains("transactions_train.parquet") && e.contains("not a readable Parquet file"), "{e}");
}

/// A Parquet dataset directory (Spark's and pyarrow's output: part files plus `_SUCCESS`) reads
/// as one log, its parts in name order, the same rows as the CSV with those rows.
#[test]
fn parquet_dataset_directory_reads_as_one_log() {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("log.parquet");
    std::fs::create_dir(&dir).unwrap();
    let parts = [(["u1", "u2"], [10, 11], [100, 101]), (["u1", "u3"], [12, 10], [102, 103])];
    for (n, (users, items, times)) in parts.iter().enumerate() {
        let columns: Vec<(&str, ArrayRef)> = vec![
            ("user", Arc::new(StringArray::from(users.to_vec()))),
            ("item", Arc::new(Int64Array::from(items.to_vec()))),
            ("time", Arc::new(Int64Array::from(times.to_vec()))),
        ];
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let file = std::fs::File::create(dir.join(format!("part-{n:05}-x.snappy.parquet"))).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }
    write(&dir, "_SUCCESS", b"");
    write(&dir, ".part-00000-x.snappy.parquet.crc", b"not data");
    let csv = write(d.path(), "log.csv", b"user,item,time\nu1,10,100\nu2,11,101\nu1,12,102\nu3,10,103\n");
    let spec = |path: PathBuf| {
        let mut s = csv_spec(path);
        s.columns.weight = None;
        Source::Delimited(Box::new(DelimitedSource { log: s, items: None }))
    };
    let (a, b) = (spec(dir.clone()).load(&NoProgress).unwrap(), spec(csv).load(&NoProgress).unwrap());
    assert_eq!(a.interactions, b.interactions);
    assert_eq!((a.users.len(), a.items.len(), a.interactions.len()), (3, 3, 4));
    // A directory without parts is named as such.
    let empty = d.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let e = spec(empty).load(&NoProgress).unwrap_err().to_string();
    assert!(e.contains("empty") && e.contains("no .parquet files"), "{e}");
}
