"""_BB.txt boxes: the official scaling (int(float(v)), then int(v * (real / 224))) and clamping
(including its y1 + h quirk), and the broken files of the real release (empty, negative,
malformed, missing) -> the whole image, counted by status."""
import pytest

from celeba_spoof import bbox as bb


def box(text):
    return bb.parse_box_text(text)


def test_readme_example_scaled_to_a_448_image():
    # the release README's example line; 448 x 448 -> factor 2 on both axes
    b = box("61 45 61 112 0.9970805\n")
    assert b.status == bb.OK and b.values == (61.0, 45.0, 61.0, 112.0, 0.9970805)
    assert bb.crop_box(b, 448, 448) == ((122, 90, 244, 314), bb.OK)


def test_scaling_truncates_before_and_after_like_the_official_code():
    # int(float('61.9')) = 61 first; then int(61 * (300 / 224)) = int(81.696...) = 81
    b = box("61.9 45.5 61.2 112.7 0.99")
    x1, y1, x2, y2 = bb.official_box(b.values, 300, 250)
    assert (x1, y1) == (int(61 * (300 / 224)), int(45 * (250 / 224))) == (81, 50)
    assert (x2, y2) == (81 + int(61 * (300 / 224)), 50 + int(112 * (250 / 224))) == (162, 175)


def test_issue_31_negative_y_is_clamped_to_zero():
    # "10, -5, 200, 170, .997" (issue #31) on a 224 x 224 image: y -> 0, the crop ends at y + h
    b = box("10 -5 200 170 .997")
    assert b.negative
    assert bb.crop_box(b, 224, 224) == ((10, 0, 210, 165), bb.OK)
    # negative values truncate toward zero after scaling: int(-5 * (300 / 224)) = -6
    assert bb.official_box(b.values, 300, 300)[3] == -6 + int(170 * (300 / 224))


def test_official_y1_plus_h_quirk():
    # y < 0 and y1 + h > H: the official code takes real_h although y + h < real_h
    b = box("0 -10 100 230 0.9")  # 224 x 224: factor 1; y + h = 220, y1 + h = 230 > 224
    assert bb.official_box(b.values, 224, 224)[1::2] == (0, 224)
    # ... while a box inside the image ends at y + h
    assert bb.official_box(box("0 10 100 50 0.9").values, 224, 224)[1::2] == (10, 60)


def test_box_past_the_right_and_bottom_edges_is_clamped():
    assert bb.crop_box(box("200 190 100 100 0.9"), 224, 224) == ((200, 190, 224, 224), bb.OK)


@pytest.mark.parametrize("text,status", [("", bb.EMPTY), ("\n\n", bb.EMPTY), ("   \n", bb.EMPTY),
                                         ("61 45 61 112", bb.MALFORMED), ("a b c d e", bb.MALFORMED),
                                         ("1 2 3 4 5 6", bb.MALFORMED), ("nan 1 2 3 0.9", bb.MALFORMED)])
def test_empty_and_malformed_files_keep_the_whole_image(text, status):
    b = box(text)
    assert b.status == status and b.values is None
    assert bb.crop_box(b, 120, 90) == ((0, 0, 120, 90), status)


def test_missing_file(tmp_path):
    img = tmp_path / "000001.jpg"
    assert bb.bbox_path(img) == tmp_path / "000001_BB.txt"
    b = bb.read_box_file(bb.bbox_path(img))
    assert b.status == bb.MISSING
    assert bb.crop_box(b, 50, 40) == ((0, 0, 50, 40), bb.MISSING)
    (tmp_path / "000001_BB.txt").write_text("")
    assert bb.read_box_file(bb.bbox_path(img)).status == bb.EMPTY


@pytest.mark.parametrize("text", ["10 10 -50 60 0.9",      # negative width: x2 < x1
                                  "10 10 60 0 0.9",        # zero height
                                  "300 10 50 50 0.9",      # starts right of the image
                                  "10 -90 50 60 0.9"])     # ends above the image (numpy would wrap)
def test_degenerate_official_crops_fall_back_to_the_whole_image(text):
    assert bb.crop_box(box(text), 224, 224) == ((0, 0, 224, 224), bb.DEGENERATE)


def test_negative_policy_whole():
    b = box("10 -5 200 170 .997")
    assert bb.crop_box(b, 224, 224, negative="whole") == ((0, 0, 224, 224), bb.DEGENERATE)
    assert bb.crop_box(box("10 5 200 170 .997"), 224, 224, negative="whole")[1] == bb.OK
    with pytest.raises(ValueError):
        bb.crop_box(box("10 5 200 170 .997"), 224, 224, negative="drop")


def test_to_reference_round_trips():
    x, y, w, h = bb.to_reference(30, 20, 60, 80, 448, 336)
    assert (x, y, w, h) == (15.0, 20 * 224 / 336, 30.0, 80 * 224 / 336)
