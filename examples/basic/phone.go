package main

import "strings"

// formatPhone writes a phone number from Vipps (Claims.PhoneNumber: the
// country code and the number, digits only, as in "4791234567") the way
// people write it: "+47 912 34 567". It groups the digits as is usual in
// the Nordic countries Vipps MobilePay serves, and other numbers in groups
// of three after the country code. It starts with one "+" whether or not
// the number had any, and returns anything that is not a number as it is.
func formatPhone(number string) string {
	digits := strings.TrimLeft(strings.ReplaceAll(number, " ", ""), "+")
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return number
	}
	cc := countryCode(digits)
	national := digits[len(cc):]
	var groups []int
	switch {
	case cc == "47" && len(national) == 8: // Norway: 912 34 567
		groups = []int{3, 2, 3}
	case cc == "45" && len(national) == 8: // Denmark: 12 34 56 78
		groups = []int{2, 2, 2, 2}
	case cc == "46" && len(national) == 9: // Sweden: 70 123 45 67
		groups = []int{2, 3, 2, 2}
	case cc == "358" && len(national) >= 8: // Finland: 40 123 4567
		groups = []int{2, 3, len(national) - 5}
	default:
		groups = inThrees(len(national))
	}
	var b strings.Builder
	b.WriteString("+" + cc)
	for _, n := range groups {
		b.WriteString(" " + national[:n])
		national = national[n:]
	}
	return b.String()
}

// inThrees splits n digits into groups of three, the last of two to four;
// up to five digits stay together.
func inThrees(n int) []int {
	switch {
	case n == 0:
		return nil
	case n <= 5:
		return []int{n}
	}
	var groups []int
	for n > 4 {
		groups = append(groups, 3)
		n -= 3
	}
	return append(groups, n)
}

// countryCode returns the country calling code that digits start with
// (ITU-T E.164): one digit for 1 and 7, two for the codes below, and three
// for all others. It returns all of digits when they are too short to hold
// a number after the code.
func countryCode(digits string) string {
	n := 3
	switch {
	case digits[0] == '1' || digits[0] == '7':
		n = 1
	case len(digits) >= 2 && twoDigitCodes[digits[:2]]:
		n = 2
	}
	return digits[:min(n, len(digits))]
}

// twoDigitCodes are the country calling codes of two digits.
var twoDigitCodes = map[string]bool{
	"20": true, "27": true, "30": true, "31": true, "32": true, "33": true, "34": true, "36": true,
	"39": true, "40": true, "41": true, "43": true, "44": true, "45": true, "46": true, "47": true,
	"48": true, "49": true, "51": true, "52": true, "53": true, "54": true, "55": true, "56": true,
	"57": true, "58": true, "60": true, "61": true, "62": true, "63": true, "64": true, "65": true,
	"66": true, "81": true, "82": true, "84": true, "86": true, "90": true, "91": true, "92": true,
	"93": true, "94": true, "95": true, "98": true,
}
