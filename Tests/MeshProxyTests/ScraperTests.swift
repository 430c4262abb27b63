import Foundation
import Testing
import NIOPosix
import MeshDemo
import MeshMetrics
import MeshSources

/// The scraper against a real HTTP server: every target answered, however many there are beside
/// the transfers in flight at once.
@Suite struct ScraperTests {
    @Test(arguments: [1, 2, 3, 32])
    func everyTargetIsScrapedWhateverTheBatch(inFlight: Int) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = try await AppServer.start(group: group) { request, loop in
            loop.makeSucceededFuture(AppResponse(status: 200, body: "up_like{path=\"\(request.path)\"} 1\n"))
        }
        let scraper = Scraper(timeoutSeconds: 5)
        scraper.maxInFlight = inFlight
        // More targets than in flight, and a count that leaves a short last batch.
        let targets = (0..<(inFlight * 3 + 1)).map { ScrapeTarget(url: "http://\(server.address)/t\($0)") }
        var seen: [Int] = []
        scraper.scrape(targets, now: { 0 }) { i, r in
            #expect(r.error == nil, "target \(i): \(r.error ?? "")")
            #expect(String(decoding: r.body ?? [], as: UTF8.self).contains("/t\(i)\""), "target \(i) got another's answer")
            seen.append(i)
        }
        #expect(seen.sorted() == Array(targets.indices))
        let all = scraper.scrape(targets) { 0 }
        #expect(all.allSatisfy { $0.error == nil }, "\(all.compactMap(\.error))")
        await server.stop()
        try await group.shutdownGracefully()
    }
}
