"""Date parsing: YYYYMMDD, product names, JSON date dicts."""

import numpy as np
import pytest

from maestro.data.dates import as_array, date_dict, parse_yyyymmdd, product_date, to_yyyymmdd


def test_parse_and_format():
    assert parse_yyyymmdd("20190701") == (2019, 182, 0)
    assert parse_yyyymmdd(20200229) == (2020, 60, 0)
    assert parse_yyyymmdd("20210700") == (2021, 182, 0)  # FLAIR unknown day "00" -> 1st
    assert to_yyyymmdd(2019, 182) == "20190701"
    with pytest.raises(ValueError, match="not a YYYYMMDD"):
        parse_yyyymmdd("2019-07")
    with pytest.raises(ValueError, match=r"'20191301' \(month must be in 1..12\)"):
        parse_yyyymmdd("20191301")
    with pytest.raises(ValueError, match="'20190230'"):
        parse_yyyymmdd("20190230")
    with pytest.raises(ValueError, match="not a YYYYMMDD date: '202008025'"):
        parse_yyyymmdd("202008025")  # a ninth digit: not 2 August
    assert parse_yyyymmdd("20200802T104431") == parse_yyyymmdd("20200802.0") == (2020, 215, 0)


def test_product_names():
    s2 = "S2A_MSIL2A_20190103T104431_N0211_R008_T32UMD_20190103T115449"
    s1 = b"S1A_IW_GRDH_1SDV_20190101T171656_20190101T171721_025287_02CC09_1570"
    assert product_date(s2) == (2019, 3, 0)
    assert product_date(s1) == (2019, 1, 0)
    with pytest.raises(ValueError, match="fewer than 5"):
        product_date("S2A_MSIL2A")


def test_date_dicts_with_both_key_bases():
    assert date_dict('{"0": 20180924, "1": 20181004}', base=0) == [(2018, 267, 0), (2018, 277, 0)]
    assert date_dict({"1": "20200105", "2": "20200110"}, base=1) == [(2020, 5, 0), (2020, 10, 0)]
    with pytest.raises(ValueError, match="consecutive from 0"):
        date_dict({"0": 20180924, "2": 20181004}, base=0)
    assert date_dict({"00": 20180924, "01": 20181004}, base=0) == [(2018, 267, 0), (2018, 277, 0)]
    with pytest.raises(ValueError, match="repeat a number"):
        date_dict({"0": 20180924, "00": 20181004, "1": 20181014}, base=0)
    with pytest.raises(ValueError, match="a JSON object of dates, found list"):
        date_dict("[20180924]", base=0)
    arr = as_array([(2019, 1, 0), (2019, 2, 0)])
    assert arr.dtype == np.int16 and arr.shape == (2, 3)
