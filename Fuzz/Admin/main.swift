/// libFuzzer entry: any bytes as the body of `POST /split` on meshproxy's admin API. A request
/// whose weights are all whole numbers from 0 to 1,000,000, or a reason to answer 400; never a
/// trap (1e300, NaN and strings among the weights).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    switch SplitRequest.parse(Array(UnsafeBufferPointer(start: data, count: size))) {
    case .success(let request):
        precondition(request.weights.values.allSatisfy { (0...SplitRequest.maxWeight).contains($0) }, "a weight out of range was taken")
    case .failure(let problem):
        precondition(!problem.description.isEmpty, "a refusal without a reason")
    }
    return 0
}
