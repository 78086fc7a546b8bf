//! Proptest strategies for the model test: a small key space so that
//! operations collide, revisions around the live range, nested txns.

use proptest::prelude::*;

use super::model::{MCompare, MDel, MOp, MPut, MRange, MTarget, MTxn, Step};
use crate::mvcc::*;

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        40 => prop::sample::select(vec!["a", "ab", "b", "c", "d"]).prop_map(|k| k.as_bytes().to_vec()),
        2 => Just(vec![0u8]),
        1 => Just(vec![]),
    ]
}

fn range_end() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => Just(vec![]),
        5 => Just(vec![0u8]),
        3 => prop::sample::select(vec!["a", "b", "c", "e"]).prop_map(|k| k.as_bytes().to_vec()),
    ]
}

fn small_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::sample::select(vec!["", "x", "y", "zz"]).prop_map(|v| v.as_bytes().to_vec())
}

fn revision() -> impl Strategy<Value = i64> {
    prop_oneof![4 => Just(0i64), 5 => 1..18i64, 1 => -2..1i64]
}

fn filter() -> impl Strategy<Value = i64> {
    prop_oneof![8 => Just(0i64), 1 => 1..18i64]
}

fn m_range() -> impl Strategy<Value = MRange> {
    let orders = prop::sample::select(vec![SortOrder::None, SortOrder::Ascend, SortOrder::Descend]);
    let targets = prop::sample::select(vec![
        SortTarget::Key,
        SortTarget::Version,
        SortTarget::Create,
        SortTarget::Mod,
        SortTarget::Value,
    ]);
    (
        key(),
        range_end(),
        prop_oneof![6 => 0..4i64, 1 => Just(-1i64)],
        revision(),
        orders,
        targets,
        (prop::bool::weighted(0.25), prop::bool::weighted(0.15)),
        [filter(), filter(), filter(), filter()],
    )
        .prop_map(
            |(key, end, limit, revision, order, target, (ko, co), filters)| MRange {
                key,
                end,
                limit,
                revision,
                order,
                target,
                keys_only: ko,
                count_only: co,
                filters,
            },
        )
}

fn m_put() -> impl Strategy<Value = MPut> {
    (key(), small_bytes(), 0..3i64, any::<bool>(), 0..24u8).prop_map(
        |(key, value, lease, prev_kv, flags)| MPut {
            key,
            // Mostly well-formed ignore_* puts, sometimes the refused kind.
            value: if flags == 1 || flags == 3 {
                vec![]
            } else {
                value
            },
            lease: if flags == 2 || flags == 3 { 0 } else { lease },
            prev_kv,
            ignore_value: flags == 1 || flags == 3 || flags == 4,
            ignore_lease: flags == 2 || flags == 3 || flags == 5,
        },
    )
}

fn m_del() -> impl Strategy<Value = MDel> {
    (key(), range_end(), any::<bool>()).prop_map(|(key, end, prev_kv)| MDel { key, end, prev_kv })
}

fn m_compare() -> impl Strategy<Value = MCompare> {
    let results = prop::sample::select(vec![
        CompareResult::Equal,
        CompareResult::Greater,
        CompareResult::Less,
        CompareResult::NotEqual,
    ]);
    let targets = prop_oneof![
        (0..4i64).prop_map(MTarget::Version),
        (0..12i64).prop_map(MTarget::Create),
        (0..12i64).prop_map(MTarget::Mod),
        small_bytes().prop_map(MTarget::Value),
        (0..3i64).prop_map(MTarget::Lease),
    ];
    (key(), range_end(), results, targets).prop_map(|(key, end, result, target)| MCompare {
        key,
        end,
        result,
        target,
    })
}

fn m_txn(depth: u32) -> BoxedStrategy<MTxn> {
    let leaf = prop_oneof![
        2 => m_range().prop_map(MOp::Range),
        3 => m_put().prop_map(MOp::Put),
        2 => m_del().prop_map(MOp::Del),
    ];
    let op = if depth == 0 {
        leaf.boxed()
    } else {
        prop_oneof![5 => leaf, 2 => m_txn(depth - 1).prop_map(MOp::Txn)].boxed()
    };
    (
        prop::collection::vec(m_compare(), 0..3),
        prop::collection::vec(op.clone(), 0..4),
        prop::collection::vec(op, 0..4),
    )
        .prop_map(|(compare, success, failure)| MTxn {
            compare,
            success,
            failure,
        })
        .boxed()
}

pub(super) fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => m_put().prop_map(|p| Step::Op(MOp::Put(p))),
        2 => m_del().prop_map(|d| Step::Op(MOp::Del(d))),
        3 => m_range().prop_map(|r| Step::Op(MOp::Range(r))),
        3 => m_txn(2).prop_map(|t| Step::Op(MOp::Txn(t))),
        1 => revision().prop_map(Step::Compact),
    ]
}
