// HostTransferBan: inside it every way between host and device is refused with an error that
// names the op and the stretch of code; outside it (and after it, however it ended) all work.
#include <gtest/gtest.h>

#include <thread>

#include "autograd/ops.h"
#include "core/host_transfer_ban.h"
#include "tests/core/test_util.h"

using namespace mmgrad;

TEST(HostTransferBan, RefusesEveryWayBetweenHostAndDevice) {
  Tensor x = arange(0, 4, 1, DType::F32);
  Generator gen(1);
  {
    HostTransferBan ban("the recorded step");
    EXPECT_TRUE(host_transfers_banned());
    EXPECT_MMGRAD_ERROR(item(sum(x)), "to_vector", "read back to the host inside the recorded step");
    EXPECT_MMGRAD_ERROR(to_vector<float>(x), "to_vector", "inside the recorded step");
    EXPECT_MMGRAD_ERROR(from_data<float>({1, 2}, {2}), "from_data", "host values inside the recorded step");
    EXPECT_MMGRAD_ERROR(rand({3}, DType::F32, Device::cpu(), &gen), "rand", "repeat its numbers");
    EXPECT_MMGRAD_ERROR(randn({3}, DType::F32, Device::cpu(), &gen), "randn", "inside the recorded step");
    // What stays on the device is allowed: arange and full fill on the device, ops compute.
    Tensor y = add(mul(x, 2.0), arange(0, 4, 1, DType::F32));
    Tensor z = where(gt(y, 3.0), y, full({4}, -1.0));
    EXPECT_EQ(z.shape(), (Shape{4}));
    {
      HostTransferBan inner("an inner stretch");
      EXPECT_MMGRAD_ERROR(item(sum(x)), "to_vector", "inside an inner stretch");
    }
    EXPECT_MMGRAD_ERROR(item(sum(x)), "to_vector", "inside the recorded step");  // the outer one again
  }
  EXPECT_FALSE(host_transfers_banned());
  EXPECT_EQ(item(sum(x)), 6.0);
  EXPECT_EQ(to_vector<float>(from_data<float>({1, 2}, {2})), (std::vector<float>{1, 2}));
}

TEST(HostTransferBan, EndsWhenAnExceptionLeavesItsScope) {
  try {
    HostTransferBan ban("a failing stretch");
    fail("test", "leaving by an exception");
  } catch (const Error&) {
  }
  EXPECT_FALSE(host_transfers_banned());
}

TEST(HostTransferBan, BindsOnlyItsOwnThread) {
  HostTransferBan ban("the main thread's stretch");
  bool other_thread_banned = true;
  std::thread t([&] { other_thread_banned = host_transfers_banned(); });
  t.join();
  EXPECT_FALSE(other_thread_banned);
}

TEST(AssertAll, PassesOrFailsWithItsMessage) {
  assert_all(gt(arange(1, 5, 1, DType::I64), 0.0), "check", "all positive");
  assert_all(gt(arange(0, 0, 1, DType::I64), 0.0), "check", "an empty tensor holds");
  EXPECT_MMGRAD_ERROR(assert_all(gt(arange(0, 5, 1, DType::I64), 0.0), "my_op", "element 0 is not positive"), "my_op",
                      "element 0 is not positive");
  // Views are checked as the elements they show.
  Tensor m = gt(arange(-3, 3, 1, DType::F32), -0.5);  // F F F T T T
  assert_all(narrow(m, 0, 3, 3), "check", "the second half");
  EXPECT_MMGRAD_ERROR(assert_all(narrow(m, 0, 2, 2), "check", "half-open"), "check", "half-open");
  EXPECT_MMGRAD_ERROR(assert_all(arange(0, 3, 1, DType::F32), "check", "x"), "assert_all", "Bool");
}
