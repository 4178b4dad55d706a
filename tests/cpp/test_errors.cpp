// The error macros themselves: exception types, message content, evaluation rules.
//
// Argument checks must survive release builds, so this file forces NDEBUG on.
#ifndef NDEBUG
#define NDEBUG
#endif

#include "fastocclusion/errors.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace {

using fastocclusion::invariant_error;
using fastocclusion::user_error;

static_assert(std::is_base_of_v<std::invalid_argument, user_error>,
              "user_error must be a std::invalid_argument (Python ValueError)");
static_assert(std::is_base_of_v<std::logic_error, invariant_error>);
static_assert(!std::is_base_of_v<std::invalid_argument, invariant_error>,
              "an internal bug must not look like a caller mistake");

void expects_positive(int value) {
  FASTOCCLUSION_EXPECTS(value > 0, "value=" << value << " is invalid, expected > 0");
}

void assert_never(int a) { FASTOCCLUSION_ASSERT(a + 1 == 3, "a was " << a); }

TEST(ExpectsMacro, PassingConditionDoesNotThrow) { EXPECT_NO_THROW(expects_positive(5)); }

TEST(ExpectsMacro, FailingConditionThrowsUserErrorWithExactMessage) {
  try {
    expects_positive(-7);
    FAIL() << "FASTOCCLUSION_EXPECTS did not throw";
  } catch (const user_error& e) {
    // User errors carry exactly the streamed message: no location, no prefix.
    EXPECT_EQ(std::string(e.what()), "value=-7 is invalid, expected > 0");
  }
}

TEST(ExpectsMacro, IsCatchableAsInvalidArgument) {
  EXPECT_THROW(expects_positive(0), std::invalid_argument);
}

TEST(ExpectsMacro, MessageIsBuiltOnlyOnFailure) {
  int evaluations = 0;
  FASTOCCLUSION_EXPECTS(true, "never " << ++evaluations);
  EXPECT_EQ(evaluations, 0);
  EXPECT_THROW(FASTOCCLUSION_EXPECTS(false, "once " << ++evaluations), user_error);
  EXPECT_EQ(evaluations, 1);
}

TEST(ExpectsMacro, ConditionIsEvaluatedOnce) {
  int evaluations = 0;
  FASTOCCLUSION_EXPECTS(++evaluations > 0, "unused");
  EXPECT_EQ(evaluations, 1);
}

TEST(ExpectsMacro, BehavesAsOneStatementInUnbracedIfElse) {
  bool else_taken = false;
  const bool take_if = false;
  if (take_if)
    FASTOCCLUSION_EXPECTS(false, "must not run");
  else
    else_taken = true;
  EXPECT_TRUE(else_taken);
}

TEST(AssertMacro, PassingConditionDoesNotThrow) {
  EXPECT_NO_THROW(FASTOCCLUSION_ASSERT(1 + 1 == 2, "arithmetic"));
}

TEST(AssertMacro, ThrowsInvariantErrorNotUserError) {
  try {
    assert_never(1);
    FAIL() << "FASTOCCLUSION_ASSERT did not throw";
  } catch (const user_error&) {
    FAIL() << "FASTOCCLUSION_ASSERT threw a user_error";
  } catch (const invariant_error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("internal error: a was 1", 0), 0u) << what;
    EXPECT_NE(what.find("(a + 1 == 3)"), std::string::npos) << what;  // the condition text
    EXPECT_NE(what.find("test_errors.cpp:"), std::string::npos) << what;  // file and line
  }
}

TEST(AssertMacro, ReportsTheLineOfTheFailingCheck) {
  int line = 0;
  try {
    line = __LINE__ + 1;
    FASTOCCLUSION_ASSERT(line < 0, "line check");
  } catch (const invariant_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("test_errors.cpp:" + std::to_string(line)), std::string::npos) << what;
    return;
  }
  FAIL() << "FASTOCCLUSION_ASSERT did not throw";
}

TEST(AssertMacro, IsNotCompiledOutUnderNdebug) {
  EXPECT_THROW(FASTOCCLUSION_ASSERT(false, "still checked"), invariant_error);
  EXPECT_THROW(FASTOCCLUSION_EXPECTS(false, "still checked"), user_error);
}

TEST(QuoteForMessage, EscapesNulQuotesAndNonAsciiAndCutsLongValues) {
  using fastocclusion::detail::quote_for_message;
  using namespace std::string_view_literals;
  EXPECT_EQ(quote_for_message("valid"), "\"valid\"");
  EXPECT_EQ(quote_for_message("cover\0junk"sv), "\"cover\\x00junk\"");
  EXPECT_EQ(quote_for_message("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(quote_for_message("\n\x7f\xc3\xa9"), "\"\\x0a\\x7f\\xc3\\xa9\"");
  EXPECT_EQ(quote_for_message(""), "\"\"");
  const std::string long_value(100, 'x');
  EXPECT_EQ(quote_for_message(long_value), "\"" + std::string(64, 'x') + "...\"");
}

}  // namespace
