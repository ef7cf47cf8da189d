package iso4217

import "testing"

func TestValid(t *testing.T) {
	for _, tc := range []struct {
		code string
		want bool
		dig  int
	}{
		{"EUR", true, 2}, {"USD", true, 2}, {"JPY", true, 0}, {"KWD", true, 3}, {"XCG", true, 2},
		{"eur", false, 0}, {"EU", false, 0}, {"EURO", false, 0}, {"XXX", false, 0}, {"XAU", false, 0},
		{"HRK", false, 0}, {"BGN", false, 0}, {"ABC", false, 0}, {"", false, 0},
	} {
		if got := Valid(tc.code); got != tc.want {
			t.Errorf("Valid(%q): got %v, want %v", tc.code, got, tc.want)
		}
		if d, ok := Digits(tc.code); ok != tc.want || d != tc.dig {
			t.Errorf("Digits(%q): got %d, %v; want %d, %v", tc.code, d, ok, tc.dig, tc.want)
		}
	}
	for code := range digits {
		if len(code) != 3 || code[0] < 'A' || code[0] > 'Z' || code[1] < 'A' || code[1] > 'Z' || code[2] < 'A' || code[2] > 'Z' {
			t.Errorf("malformed code %q", code)
		}
	}
	if n := Codes(); n < 150 || n > 190 {
		t.Errorf("got %d codes; the active list has about 155 to 165", n)
	}
}
